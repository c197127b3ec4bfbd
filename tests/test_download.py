"""Tests for weight downloads against a local HTTP server that can cut connections, fail, or ignore Range."""

from __future__ import annotations

import errno
import hashlib
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from fcn_viewer.cli import models as models_command
from fcn_viewer.cli.main import main
from fcn_viewer.errors import DownloadError
from fcn_viewer.weights import download as download_module
from fcn_viewer.weights.download import DownloadCancelled, ExpectedSize, Progress, cache_dir, download, hash_file
from fcn_viewer.weights.registry import entry, fetch_entry

BODY = random.Random(0).randbytes(50_000)
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
FILE_PATH = "/weights.bin"


class _Server(ThreadingHTTPServer):
    """Serves BODY at FILE_PATH; its attributes switch on failure modes and record the requests seen."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cut_after: int | None = None
        self.error: int | None = None
        self.ignore_range = False
        self.slow = False
        self.ranges: list[str | None] = []
        self.pages: dict[str, tuple[str, bytes]] = {}  # more paths: content type and body, served with status 200

    def url(self, path: str = FILE_PATH) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.ranges.append(self.headers.get("Range"))
        if self.server.error is not None:
            self.send_error(self.server.error)
            return
        if self.path in self.server.pages:
            content_type, page = self.server.pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        if self.path != FILE_PATH:
            self.send_error(404)
            return
        start = self._range_start()
        if start >= len(BODY) and start > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(BODY)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
        payload = BODY[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._send(payload if self.server.cut_after is None else payload[: self.server.cut_after])
        self.close_connection = True

    def _range_start(self) -> int:
        header = self.headers.get("Range")
        if header is None or self.server.ignore_range:
            return 0
        match = re.fullmatch(r"bytes=(\d+)-", header)
        assert match is not None, header
        return int(match[1])

    def _send(self, payload: bytes) -> None:
        for offset in range(0, len(payload), 10_000):
            self.wfile.write(payload[offset : offset + 10_000])
            self.wfile.flush()
            if self.server.slow:
                time.sleep(0.02)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "weights" / "model.pth"


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_plain_download_reports_monotonic_progress(server: _Server, dest: Path) -> None:
    seen: list[Progress] = []
    assert download(server.url(), dest, progress=seen.append, chunk_size=4096, timeout=5) == dest
    assert dest.read_bytes() == BODY
    assert not _part(dest).exists()
    dones = [p.done for p in seen]
    assert dones == sorted(dones)
    assert all(p.total == len(BODY) for p in seen)
    assert seen[-1] == Progress(len(BODY), len(BODY))


@pytest.mark.parametrize("hashes", [{"sha256": SHA256}, {"md5": MD5}, {"sha256": SHA256.upper(), "md5": MD5}])
def test_hash_verification_succeeds(server: _Server, dest: Path, hashes: dict[str, str]) -> None:
    assert download(server.url(), dest, timeout=5, **hashes) == dest
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_hash_mismatch_deletes_everything(server: _Server, dest: Path, algorithm: str) -> None:
    wrong = "0" * len(hashlib.new(algorithm).hexdigest())
    with pytest.raises(DownloadError) as info:
        download(server.url(), dest, timeout=5, **{algorithm: wrong})
    message = str(info.value)
    assert server.url() in message and wrong in message
    assert hashlib.new(algorithm, BODY).hexdigest() in message
    assert not dest.exists() and not _part(dest).exists()


def test_cut_connection_keeps_part_and_resumes(server: _Server, dest: Path) -> None:
    server.cut_after = 12_345
    with pytest.raises(DownloadError, match=f"interrupted after 12345 of {len(BODY)} bytes.*resume"):
        download(server.url(), dest, sha256=SHA256, timeout=5)
    assert not dest.exists()
    assert _part(dest).read_bytes() == BODY[:12_345]

    server.cut_after = None
    seen: list[Progress] = []
    download(server.url(), dest, sha256=SHA256, progress=seen.append, timeout=5)
    assert server.ranges == [None, "bytes=12345-"]
    assert dest.read_bytes() == BODY
    assert not _part(dest).exists()
    assert seen[0] == Progress(12_345, len(BODY)) and seen[-1] == Progress(len(BODY), len(BODY))


def test_server_ignoring_range_restarts_from_zero(server: _Server, dest: Path) -> None:
    server.cut_after = 20_000
    with pytest.raises(DownloadError):
        download(server.url(), dest, timeout=5)
    server.cut_after = None
    server.ignore_range = True
    download(server.url(), dest, sha256=SHA256, timeout=5)
    assert server.ranges[-1] == "bytes=20000-"
    assert dest.read_bytes() == BODY


def test_complete_part_answered_416_is_accepted(server: _Server, dest: Path) -> None:
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(BODY)
    download(server.url(), dest, sha256=SHA256, timeout=5)
    assert server.ranges == [f"bytes={len(BODY)}-"]
    assert dest.read_bytes() == BODY and not _part(dest).exists()


def test_oversized_part_answered_416_restarts_once(server: _Server, dest: Path) -> None:
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(BODY + b"junk")
    download(server.url(), dest, timeout=5)
    assert server.ranges == [f"bytes={len(BODY) + 4}-", None]
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_name_url_and_status(server: _Server, dest: Path, status: int) -> None:
    server.error = status
    with pytest.raises(DownloadError, match=str(status)) as info:
        download(server.url(), dest, timeout=5)
    assert server.url() in str(info.value)
    assert not dest.exists()


def test_missing_path_is_404(server: _Server, dest: Path) -> None:
    with pytest.raises(DownloadError, match="404"):
        download(server.url("/missing.bin"), dest, timeout=5)


def test_cancel_keeps_part_for_resume(server: _Server, dest: Path) -> None:
    def cancel_after_3000_bytes(done: Progress) -> None:
        if done.done >= 3000:
            cancelled.set()

    cancelled = threading.Event()
    with pytest.raises(DownloadCancelled):
        download(server.url(), dest, cancel=cancelled.is_set, progress=cancel_after_3000_bytes, chunk_size=1000,
                 timeout=5)
    assert not dest.exists()
    kept = _part(dest).read_bytes()
    assert 3000 <= len(kept) < len(BODY) and kept == BODY[: len(kept)]
    download(server.url(), dest, sha256=SHA256, timeout=5)
    assert server.ranges[-1] == f"bytes={len(kept)}-"
    assert dest.read_bytes() == BODY


def test_disk_full_is_reported(server: _Server, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open

    class FullDisk:
        def __init__(self, file: Any) -> None:
            self._file = file

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._file.close()

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = real_open(file, mode, *args, **kwargs)
        return FullDisk(opened) if "w" in mode or "a" in mode else opened

    monkeypatch.setattr(download_module, "open", full_open, raising=False)
    with pytest.raises(DownloadError, match="disk is full") as info:
        download(server.url(), dest, timeout=5)
    assert str(dest.parent) in str(info.value)
    assert not dest.exists()


def test_concurrent_downloads_share_one_transfer(server: _Server, dest: Path) -> None:
    server.slow = True
    barrier = threading.Barrier(2)
    results: list[Path | BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(download(server.url(), dest, sha256=SHA256, timeout=5))
        except BaseException as error:  # reported by the assertion below
            results.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [dest, dest]
    assert dest.read_bytes() == BODY
    assert server.ranges == [None]


def test_existing_dest_with_right_hash_makes_no_request(server: _Server, dest: Path) -> None:
    dest.parent.mkdir(parents=True)
    dest.write_bytes(BODY)
    assert download(server.url(), dest, sha256=SHA256, md5=MD5, timeout=5) == dest
    assert server.ranges == []


def test_existing_dest_with_wrong_hash_is_replaced(server: _Server, dest: Path) -> None:
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"stale")
    download(server.url(), dest, sha256=SHA256, timeout=5)
    assert server.ranges == [None]
    assert dest.read_bytes() == BODY


def test_file_url(tmp_path: Path, dest: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(BODY)
    download(source.as_uri(), dest, md5=MD5)
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize("url", ["ftp://example.com/w.pth", "javascript:alert(1)", "/local/path.pth"])
def test_unsupported_schemes_are_refused(dest: Path, url: str) -> None:
    with pytest.raises(DownloadError, match="only http, https and file"):
        download(url, dest)


def test_unreachable_server_is_download_error(dest: Path) -> None:
    httpd = _Server()
    url = httpd.url()
    httpd.server_close()
    with pytest.raises(DownloadError, match="cannot download"):
        download(url, dest, timeout=5)


def test_cache_dir_honours_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "custom"))
    assert cache_dir() == tmp_path / "custom"
    assert cache_dir().is_dir()


def test_cache_dir_defaults_to_platform_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FCN_VIEWER_CACHE", raising=False)
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(tmp_path / app))
    assert cache_dir() == tmp_path / "fcn-viewer"
    assert cache_dir().is_dir()


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(BODY)
    assert hash_file(path, "sha256") == SHA256
    assert hash_file(path, "md5") == MD5


QUOTA_PAGE = b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>...</body></html>"
SHA1 = hashlib.sha1(BODY).hexdigest()


def _leftovers(dest: Path) -> list[str]:
    return sorted(path.name for path in dest.parent.iterdir()) if dest.parent.exists() else []


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_a_web_page_is_refused_with_the_url_to_open_and_nothing_is_left(
    server: _Server, dest: Path, content_type: str
) -> None:
    server.pages["/uc"] = (content_type, QUOTA_PAGE)  # labelled as HTML, or only recognisable by its first bytes
    with pytest.raises(DownloadError) as info:
        download(server.url("/uc"), dest, sha256=SHA256, timeout=5)
    message = str(info.value)
    assert "web page" in message and f"Open {server.url('/uc')} in a browser" in message
    assert _leftovers(dest) == []


def test_mirrors_are_tried_in_turn_and_every_failure_is_named(server: _Server, dest: Path) -> None:
    server.pages["/quota"] = ("text/html", QUOTA_PAGE)
    down, page, good = server.url("/gone.bin"), server.url("/quota"), server.url()
    assert download(down, dest, sha1=SHA1, mirrors=[page, good], timeout=5) == dest
    assert dest.read_bytes() == BODY
    assert _leftovers(dest) == ["model.pth"]
    dest.unlink()
    with pytest.raises(DownloadError) as info:
        download(down, dest, sha1=SHA1, mirrors=[page], timeout=5)
    message = str(info.value)
    assert "any of its 2 sources" in message and "HTTP 404" in message and "web page" in message
    assert _leftovers(dest) == []


def test_sha1_is_checked(server: _Server, dest: Path) -> None:
    with pytest.raises(DownloadError, match="sha1 mismatch"):
        download(server.url(), dest, sha1="0" * 40, timeout=5)
    assert _leftovers(dest) == []


def test_the_declared_size_is_checked_before_and_after_the_transfer(server: _Server, dest: Path) -> None:
    with pytest.raises(DownloadError, match="the server offers 50000 bytes, but the file should be 60000 bytes"):
        download(server.url(), dest, size=ExpectedSize(60_000), timeout=5)
    assert server.ranges == [None] and _leftovers(dest) == []
    assert download(server.url(), dest, size=ExpectedSize(49_500, tolerance=0.02), timeout=5) == dest
    # a file that does not match the size is fetched again rather than trusted
    dest.write_bytes(b"short")
    assert download(server.url(), dest, size=ExpectedSize(len(BODY)), timeout=5) == dest
    assert dest.read_bytes() == BODY


def test_no_lock_file_is_left_after_success_failure_or_cancel(server: _Server, dest: Path) -> None:
    lock = dest.with_name(dest.name + ".lock")
    with pytest.raises(DownloadError):
        download(server.url("/missing.bin"), dest, timeout=5)
    assert not lock.exists()
    with pytest.raises(DownloadError):
        download(server.url(), dest, sha256="0" * 64, timeout=5)
    assert not lock.exists()
    with pytest.raises(DownloadCancelled):
        download(server.url(), dest, cancel=lambda: True, timeout=5)
    assert not lock.exists()
    download(server.url(), dest, sha256=SHA256, timeout=5)
    assert _leftovers(dest) == ["model.pth"]


def test_a_waiter_takes_the_lock_after_its_file_was_removed(server: _Server, dest: Path) -> None:
    """Two runs at once: the second waits on the first's lock file, which the first removes when done."""
    server.slow = True
    results: list[Path | BaseException] = []
    started = threading.Event()

    def progress(_: Progress) -> None:
        started.set()

    def second() -> None:
        started.wait(5)
        try:
            results.append(download(server.url(), dest, sha256=SHA256, timeout=5))
        except BaseException as error:  # reported by the assertion below
            results.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    assert download(server.url(), dest, sha256=SHA256, progress=progress, timeout=5) == dest
    thread.join(timeout=10)
    assert results == [dest] and server.ranges == [None]
    assert _leftovers(dest) == ["model.pth"]


def test_registry_entries_fetch_from_their_mirrors_with_size_and_hash(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))
    server.pages["/quota"] = ("text/html", QUOTA_PAGE)
    item = replace(entry("fcn8s-heavy-pascal"), url=server.url("/quota"), mirrors=(server.url(),), sha1=SHA1,
                   size_bytes=len(BODY))
    assert fetch_entry(item) == item.path and item.path.read_bytes() == BODY
    assert _leftovers(item.path) == [item.filename]


def test_the_paper_models_pin_the_published_sha1s_and_the_atonce_pth_is_marked_unavailable() -> None:
    assert entry("fcn8s-heavy-pascal").sha1 == "c449ea74dd7d83751d1357d6a8c323fcf4038962"
    assert entry("fcn32s-heavy-pascal").sha1 == "05eb922d7829c39448f57e5ab9d8cd75d6c0be6d"
    for name in ("fcn8s-heavy-pascal", "fcn16s-heavy-pascal", "fcn32s-heavy-pascal", "fcn8s-atonce-pascal"):
        assert len(entry(name).mirrors) >= 1 and entry(name).size_bytes
    atonce = entry("pytorch-fcn8s-atonce_from_caffe")
    assert atonce.unavailable and "fcn8s-atonce-pascal" in atonce.unavailable
    with pytest.raises(DownloadError, match="cannot be downloaded: pytorch-fcn"):
        fetch_entry(atonce)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name lookups of .invalid hosts fail at once, as they do (whatever the resolver's timeouts) with no network."""
    real = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


@pytest.mark.usefixtures("offline")
def test_a_failed_name_lookup_is_no_internet_connection_and_each_source_is_named_once(dest: Path) -> None:
    first, second = "http://nonexistent.invalid/model.bin", "https://mirror.nonexistent.invalid/model.bin"
    with pytest.raises(DownloadError) as info:
        download(first, dest, timeout=5)
    assert str(info.value) == f"cannot download {first}: no internet connection (name lookup failed)"
    with pytest.raises(DownloadError) as info:
        download(first, dest, mirrors=[second], timeout=5)
    assert str(info.value) == (f"cannot download the file from any of its 2 sources ({first}, {second}): "
                               "no internet connection (name lookup failed)")


@pytest.mark.usefixtures("offline")
def test_the_download_command_names_each_url_once_with_the_error_on_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))
    first, second = "http://dl.nonexistent.invalid/fcn8s.caffemodel", "https://archive.nonexistent.invalid/fcn8s"
    item = replace(entry("fcn8s-heavy-pascal"), url=first, mirrors=(second,))
    monkeypatch.setattr(models_command, "entry", lambda name: item)
    assert main(["download", item.name]) == 1
    err = capsys.readouterr().err
    assert err.count(first) == 1 and err.count(second) == 1 and "Errno" not in err
    assert err.splitlines() == [
        f"{item.name} → {item.path}",
        f"error: cannot download the file from any of its 2 sources ({first}, {second}): "
        "no internet connection (name lookup failed)",
    ]
