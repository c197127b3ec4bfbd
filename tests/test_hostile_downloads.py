"""Hostile servers: a body that drips, stalls or never ends, answers that never come, redirect loops."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fcn_viewer.cli import models as models_command
from fcn_viewer.cli.main import main
from fcn_viewer.errors import DownloadError
from fcn_viewer.weights import cache
from fcn_viewer.weights import download as download_module
from fcn_viewer.weights.download import DownloadCancelled, ExpectedSize, Progress, cache_dir, download
from fcn_viewer.weights.registry import entry
from tests.hostile import HANG_LIMIT_S, ROOT, within

ENDLESS_CAP = 30_000_000  # the "endless" bodies end here, so that a download that does not stop still ends
BLOCK = b"\x5a" * 65_536


class _HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hostile)
        self.closing = threading.Event()

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{path}"


class _Hostile(BaseHTTPRequestHandler):
    server: _HostileServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        route = {"/cut": self._cut, "/drip": self._drip, "/silent": self._silent, "/mute": self._mute, "/endless": self._endless,
                 "/chunked": self._chunked, "/loop": self._loop, "/redirect": self._redirect, "/good": self._good}
        route[self.path]()

    def _cut(self) -> None:
        """300 kB of a declared megabyte, then the connection closes."""
        self._headers({"Content-Length": "1000000", "Connection": "close"})
        self.wfile.write(b"\x01" * 300_000)
        self.close_connection = True

    def _drip(self) -> None:
        """One byte a second of a declared megabyte."""
        self._headers({"Content-Length": "1000000"})
        while not self.server.closing.wait(1.0):
            self.wfile.write(b"\x01")
            self.wfile.flush()

    def _silent(self) -> None:
        """Ten bytes, then nothing, with the connection open."""
        self._headers({"Content-Length": "1000"})
        self.wfile.write(b"\x01" * 10)
        self.wfile.flush()
        self.server.closing.wait(HANG_LIMIT_S * 3)

    def _mute(self) -> None:
        """No answer at all."""
        self.server.closing.wait(HANG_LIMIT_S * 3)

    def _endless(self) -> None:
        """A body without Content-Length that goes on (up to ENDLESS_CAP) until the client hangs up."""
        self._headers({"Connection": "close"})
        self._blocks(lambda block: block)

    def _chunked(self) -> None:
        self._headers({"Transfer-Encoding": "chunked"})
        self._blocks(lambda block: b"%x\r\n%s\r\n" % (len(block), block))

    def _loop(self) -> None:
        self._headers({"Location": "/loop", "Content-Length": "0"}, status=302)

    def _redirect(self) -> None:
        """A redirect to /good whose own body never ends (a block every 50 ms until the client hangs up)."""
        self._headers({"Location": "/good", "Connection": "close"}, status=302)
        try:
            while not self.server.closing.wait(0.05):
                self.wfile.write(BLOCK)
        except OSError:
            pass

    def _good(self) -> None:
        self._headers({"Content-Length": str(len(BLOCK))})
        self.wfile.write(BLOCK)

    def _headers(self, headers: dict[str, str], status: int = 200) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _blocks(self, frame: Any) -> None:
        try:
            for _ in range(ENDLESS_CAP // len(BLOCK)):
                self.wfile.write(frame(BLOCK))
            self.close_connection = True
        except OSError:  # the client hung up, as it should
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[_HostileServer]:
    httpd = _HostileServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.closing.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "weights" / "model.pth"


def _leftovers(dest: Path) -> list[str]:
    return sorted(path.name for path in dest.parent.iterdir()) if dest.parent.exists() else []


def test_a_server_dripping_a_byte_a_second_is_cancelled_within_a_second(hostile: _HostileServer, dest: Path) -> None:
    cancel = threading.Event()
    received: list[Progress] = []
    asked_at: list[float] = []

    def run() -> object:
        return download(hostile.url("/drip"), dest, cancel=cancel.is_set, progress=received.append, timeout=5)

    def cancel_once_bytes_flow() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(p.done for p in received):
            time.sleep(0.05)
        asked_at.append(time.monotonic())
        cancel.set()

    threading.Thread(target=cancel_once_bytes_flow, daemon=True).start()
    outcome = within(run)
    answered = time.monotonic() - asked_at[0]
    assert isinstance(outcome, DownloadCancelled), outcome
    assert answered < 1.0, f"Cancel took {answered:.1f} s"
    assert any(p.done for p in received)  # the bytes that came were written as they came


def test_a_server_that_stops_sending_fails_at_the_stall_deadline_naming_the_url(
    hostile: _HostileServer, dest: Path
) -> None:
    started = time.monotonic()
    outcome = within(lambda: download(hostile.url("/silent"), dest, timeout=1))
    assert isinstance(outcome, DownloadError) and not isinstance(outcome, DownloadCancelled), outcome
    message = str(outcome)
    assert hostile.url("/silent") in message and "no data for 1 s (stalled)" in message and "\n" not in message
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_fails_at_the_timeout(hostile: _HostileServer, dest: Path) -> None:
    outcome = within(lambda: download(hostile.url("/mute"), dest, timeout=1))
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome) == f"cannot download {hostile.url('/mute')}: no answer within 1 s"


def test_a_server_that_never_answers_is_cancelled_at_once(hostile: _HostileServer, dest: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    outcome = within(lambda: download(hostile.url("/mute"), dest, cancel=cancel.is_set, timeout=30))
    assert isinstance(outcome, DownloadCancelled), outcome
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("path", ["/endless", "/chunked"])
def test_an_endless_body_stops_at_the_declared_size_plus_2_percent(
    hostile: _HostileServer, dest: Path, path: str
) -> None:
    received: list[int] = []
    outcome = within(lambda: download(hostile.url(path), dest, size=ExpectedSize(1_000_000, 0.02), timeout=5,
                                      progress=lambda p: received.append(p.done)))
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome) == (f"{hostile.url(path)}: sent more than 1020000 bytes, more than the file should have: "
                            "stopped, and nothing was saved")
    assert max(received) <= 1_020_000
    assert _leftovers(dest) == []


def test_an_endless_body_of_no_declared_size_stops_at_the_largest_weights_file(
    hostile: _HostileServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_module, "MAX_DOWNLOAD_BYTES", 2_000_000)
    outcome = within(lambda: download(hostile.url("/endless"), dest, timeout=5))
    assert isinstance(outcome, DownloadError) and "sent more than 2000000 bytes" in str(outcome), outcome
    assert _leftovers(dest) == []


def test_a_redirect_loop_is_a_one_line_error(hostile: _HostileServer, dest: Path) -> None:
    outcome = within(lambda: download(hostile.url("/loop"), dest, timeout=5))
    assert isinstance(outcome, DownloadError), outcome
    assert str(outcome) == (f"cannot download {hostile.url('/loop')}: the server redirects in a loop "
                            "(or more than 10 times)")


def test_a_redirect_whose_body_never_ends_is_followed_without_reading_it(hostile: _HostileServer, dest: Path) -> None:
    outcome = within(lambda: download(hostile.url("/redirect"), dest, size=ExpectedSize(len(BLOCK)), timeout=5))
    assert outcome == dest and dest.read_bytes() == BLOCK


def test_every_source_failing_is_still_one_line(hostile: _HostileServer, dest: Path) -> None:
    outcome = within(lambda: download(hostile.url("/loop"), dest, mirrors=[hostile.url("/silent")], timeout=1))
    assert isinstance(outcome, DownloadError), outcome
    message = str(outcome)
    assert "\n" not in message and message.startswith("cannot download the file from any of its 2 sources: (1) ")
    assert "redirects in a loop" in message and "(2) download of" in message and "(stalled)" in message


def test_a_failed_download_s_error_stands_on_a_line_of_its_own_after_the_counter(
    hostile: _HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "cache"))
    item = replace(entry("fcn8s-heavy-pascal"), url=hostile.url("/cut"), mirrors=(), sha1=None, size_bytes=1_000_000)
    monkeypatch.setattr(models_command, "entry", lambda name: item)
    assert main(["download", item.name]) == 1
    lines = capsys.readouterr().err.split("\n")
    assert any(line.startswith("\r") and "MB" in line for line in lines)  # the counter ran
    assert [line for line in lines if "error: " in line] == [
        f"error: download of {item.url} interrupted after 300000 of 1000000 bytes: the server closed the connection; "
        "run again to resume"]


@pytest.fixture
def fresh_cache_choice() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX user ids")
def test_an_unusable_cache_folder_falls_back_to_the_same_folder_on_every_run(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, FCN_VIEWER_CACHE=str(tmp_path / "taken"), TMPDIR=str(tmp_path / "tmp"),
               PYTHONPATH=str(ROOT))
    code = "from fcn_viewer.weights.download import cache_dir; print(cache_dir())"
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
            for _ in range(2)]
    fallback = tmp_path / "tmp" / f"fcn-viewer-cache-{os.getuid()}"
    assert [run.stdout.strip() for run in runs] == [str(fallback)] * 2, runs[0].stderr
    assert f"downloads go to {fallback}, the same folder on every run" in runs[1].stderr
    assert fallback.is_dir() and fallback.stat().st_mode & 0o777 == 0o700  # kept for the next run, closed to others


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX user ids")
@pytest.mark.usefixtures("fresh_cache_choice")
def test_a_fallback_folder_that_is_a_link_is_not_used_and_downloads_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "taken").write_text("a file")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "tmp" / f"fcn-viewer-cache-{os.getuid()}").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setenv("FCN_VIEWER_CACHE", str(tmp_path / "taken"))
    assert cache_dir() == tmp_path / "taken"
    note = cache.cache_note()
    assert "it is a link or a file, not a folder" in note and "downloads are refused" in note
    source = tmp_path / "model.bin"
    source.write_bytes(BLOCK)
    with pytest.raises(DownloadError, match=r"cannot save .*taken/weights/model.bin"):
        download(source.as_uri(), cache_dir() / "weights" / "model.bin")
    assert list((tmp_path / "elsewhere").iterdir()) == []
