"""Downloads weight files safely: resumable, hash- and size-checked, from mirrors in turn, refusing web pages,
atomically renamed, locked against concurrent runs (the lock file is removed afterwards)."""

from __future__ import annotations

import errno
import hashlib
import http.client
import itertools
import os
import re
import sys
import urllib.response
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import platformdirs

from fcn_viewer import __version__
from fcn_viewer.errors import DownloadError
from fcn_viewer.weights.cache import usable_cache_dir

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

_SCHEMES = frozenset({"http", "https", "file"})
_HASH_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")

_Response = http.client.HTTPResponse | urllib.response.addinfourl
_WEB_PAGE_TYPES = ("text/html", "application/xhtml")  # not text/plain: file:// and some servers label binaries so
_WEB_PAGE_STARTS = (b"<!doctype", b"<html", b"<head", b"<?xml", b"<body")


class DownloadCancelled(DownloadError):
    """The caller cancelled a download; its .part file is kept so a later call resumes it."""


@dataclass(frozen=True)
class Progress:
    """Bytes received so far (resumed bytes included) and the full size, when the server says."""

    done: int
    total: int | None


ProgressCallback = Callable[[Progress], None]


def cache_dir() -> Path:
    """The app's cache folder ($FCN_VIEWER_CACHE or the platform's user cache), created if missing."""
    override = os.environ.get("FCN_VIEWER_CACHE")
    path = Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("fcn-viewer"))
    return usable_cache_dir(path)  # a temporary folder, with a note, when that one is unusable


def hash_file(path: Path, algorithm: str) -> str:
    """The hex digest of a file under a hashlib algorithm, read in chunks."""
    return _digests(path, [algorithm])[algorithm]


@dataclass(frozen=True)
class ExpectedSize:
    """The size a file must have: exactly ``size`` bytes, or within ``tolerance`` (a fraction) of it when only an
    estimate is known (e.g. a network's parameter bytes, to which the file format adds a little)."""

    size: int
    tolerance: float = 0.0

    def accepts(self, size: int) -> bool:
        return abs(size - self.size) <= self.tolerance * self.size

    def __str__(self) -> str:
        return f"{self.size} bytes" if not self.tolerance else f"about {self.size / 1e6:.0f} MB"


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    sha1: str | None = None,
    md5: str | None = None,
    size: ExpectedSize | None = None,
    mirrors: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Fetch url (or, when it fails, each of ``mirrors`` in turn) into dest, resuming a previous .part, verifying
    the hashes and the size given; returns dest.

    Raises DownloadCancelled when cancel() returns True, DownloadError on any other failure (naming every source
    tried); dest only ever appears complete and verified, and no .lock file is left behind.
    """
    sources = [url, *mirrors]
    for source in sources:
        _check_url(source)
    hashes = (("sha256", sha256), ("sha1", sha1), ("md5", md5))
    expected = {name: value.lower() for name, value in hashes if value}
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(dest.with_name(dest.name + ".lock")):
            if dest.exists() and _complete(dest, expected, size):
                return dest
            part = dest.with_name(dest.name + ".part")
            failures: list[DownloadError] = []
            for source in sources:
                try:
                    _fetch(source, part, expected, size, progress, cancel, timeout, chunk_size)
                    _verify(source, part, expected, size)
                    break
                except DownloadCancelled:
                    raise
                except DownloadError as error:
                    failures.append(error)
            else:
                raise _all_failed(sources, failures)
            _fsync(part)
            os.replace(part, dest)
    except OSError as error:
        raise _file_error(dest, error) from error
    return dest


def _complete(path: Path, expected: dict[str, str], size: ExpectedSize | None) -> bool:
    """Whether an existing file passes every check given (with no hash and no size, any file does)."""
    if size is not None and not size.accepts(path.stat().st_size):
        return False
    return not expected or _matches(path, expected)


def _all_failed(sources: list[str], failures: list[DownloadError]) -> DownloadError:
    if len(failures) == 1:
        return failures[0]
    lines = "".join(f"\n  {source}: {failure}" for source, failure in zip(sources, failures))
    return DownloadError(f"cannot download the file from any of its {len(sources)} sources:{lines}")


def _check_url(url: str) -> None:
    if urlsplit(url).scheme.lower() not in _SCHEMES:
        raise DownloadError(f"cannot download {url!r}: only http, https and file URLs are supported")


def _fetch(
    url: str,
    part: Path,
    expected: dict[str, str],
    size: ExpectedSize | None,
    progress: ProgressCallback | None,
    cancel: Callable[[], bool] | None,
    timeout: float,
    chunk_size: int,
) -> None:
    """Bring part up to the full file: resume it, restart it, or accept it as already complete."""
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start, timeout)
    if response.status == 416:
        response.close()
        if _part_complete(part, _unsatisfied_total(response), expected):
            _report(progress, start, start)
            return
        part.unlink()
        start = 0
        response = _open(url, start, timeout)
    with response:
        if response.status == 206:
            total = _resumed_total(url, response, part, start)
        else:
            start, total = 0, _content_length(response)
        _refuse_web_page(url, response.headers.get("Content-Type", ""), b"", part)
        if size is not None and total is not None and not size.accepts(total):
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: the server offers {total} bytes, but the file should be {size}: not the expected file; "
                "nothing was saved"
            )
        _write_body(url, response, part, start, total, progress, cancel, chunk_size)


def _refuse_web_page(url: str, content_type: str, head: bytes, part: Path) -> None:
    """A web page where a weights file was expected (a quota, sign-in, virus-scan or error page served with
    status 200) is refused by its Content-Type or its first bytes; the .part is deleted."""
    kind = content_type.split(";")[0].strip().lower()
    looks_like_page = head.lstrip()[:16].lower().startswith(_WEB_PAGE_STARTS)
    if kind.startswith(_WEB_PAGE_TYPES) or looks_like_page:
        part.unlink(missing_ok=True)
        what = kind or "a text document"
        raise DownloadError(
            f"{url} answered with a web page ({what}), not the weights file — the host may want a confirmation, "
            f"a sign-in or a quota reset. Open {url} in a browser, save the file, and use it with --weights FILE "
            "(or put it in the cache folder); nothing was saved"
        )


def _open(url: str, start: int, timeout: float) -> _Response:
    """Send the request (with a Range header when resuming); a 416 answer is returned, not raised."""
    headers = {"User-Agent": f"fcn-viewer/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response: _Response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as error:
        if error.code == 416 and start:
            return error
        status = f"HTTP {error.code} {error.reason}"
        raise DownloadError(f"cannot download {url}: the server answered {status}") from error
    except URLError as error:
        raise DownloadError(f"cannot download {url}: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"cannot download {url}: {error}") from error
    return response


def _part_complete(part: Path, total: int | None, expected: dict[str, str]) -> bool:
    """Whether a .part the server will not extend (HTTP 416) already holds the whole file."""
    if total is not None and part.stat().st_size != total:
        return False
    return _matches(part, expected) if expected else total is not None


def _unsatisfied_total(response: _Response) -> int | None:
    match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match[1]) if match else None


def _resumed_total(url: str, response: _Response, part: Path, start: int) -> int | None:
    """The full size from a 206's Content-Range; a range not starting at start makes the .part unusable."""
    header = response.headers.get("Content-Range", "").strip()
    match = _CONTENT_RANGE.fullmatch(header)
    if match is None or int(match[1]) != start:
        part.unlink()
        raise DownloadError(
            f"cannot resume {url}: asked for bytes {start}-, the server sent Content-Range {header!r}; "
            "the partial download was deleted, run again to restart"
        )
    if match[3] != "*":
        return int(match[3])
    length = _content_length(response)
    return None if length is None else start + length


def _content_length(response: _Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, TypeError, ValueError):
        return None


def _write_body(
    url: str,
    response: _Response,
    part: Path,
    start: int,
    total: int | None,
    progress: ProgressCallback | None,
    cancel: Callable[[], bool] | None,
    chunk_size: int,
) -> None:
    """Stream the body into part, appending when resuming (start > 0), truncating otherwise."""
    done = start
    chunks = _chunks(url, response, start, total, cancel, chunk_size)
    first = next(chunks, b"")
    if not start:
        _refuse_web_page(url, "", first, part)
    try:
        with open(part, "ab" if start else "wb") as file:
            _report(progress, done, total)
            for chunk in itertools.chain([first] if first else [], chunks):
                file.write(chunk)
                done += len(chunk)
                _report(progress, done, total)
    except OSError as error:
        raise _file_error(part, error) from error


def _chunks(
    url: str,
    response: _Response,
    done: int,
    total: int | None,
    cancel: Callable[[], bool] | None,
    chunk_size: int,
) -> Iterator[bytes]:
    """The body in chunks; network failures and early ends become DownloadError, so OSError means disk."""
    while True:
        if cancel is not None and cancel():
            raise DownloadCancelled(f"download of {url} cancelled after {done} bytes; run again to resume")
        try:
            chunk = response.read(chunk_size)
        except (OSError, http.client.HTTPException) as error:
            raise DownloadError(_interrupted(url, done, total, f": {error}")) from error
        if not chunk:
            if total is not None and done < total:
                raise DownloadError(_interrupted(url, done, total, ": the server closed the connection"))
            return
        done += len(chunk)
        yield chunk


def _interrupted(url: str, done: int, total: int | None, reason: str) -> str:
    of_total = f"{done} of {total}" if total is not None else f"{done}"
    return f"download of {url} interrupted after {of_total} bytes{reason}; run again to resume"


def _verify(url: str, part: Path, expected: dict[str, str], size: ExpectedSize | None) -> None:
    """Check the finished file's size and hashes; a mismatching .part is deleted since resuming it cannot help."""
    received = part.stat().st_size
    if size is not None and not size.accepts(received):
        part.unlink()
        raise DownloadError(f"{url}: received {received} bytes, but the file should be {size}; the download was deleted")
    actual = _digests(part, expected)
    for algorithm, want in expected.items():
        if actual[algorithm] != want:
            part.unlink()
            raise DownloadError(
                f"{url}: {algorithm} mismatch, expected {want}, got {actual[algorithm]}; "
                "the download was deleted"
            )


def _matches(path: Path, expected: dict[str, str]) -> bool:
    return _digests(path, expected) == expected


def _digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    """Hex digests of a file under several algorithms in a single chunked pass."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _fsync(path: Path) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _report(progress: ProgressCallback | None, done: int, total: int | None) -> None:
    if progress is not None:
        progress(Progress(done, total))


def _file_error(path: Path, error: OSError) -> DownloadError:
    if error.errno == errno.ENOSPC:
        return DownloadError(f"the disk is full: cannot write {path}")
    return DownloadError(f"cannot save {path}: {error.strerror or error}")


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path (created if missing), waiting for other threads or processes; the file is
    removed when the lock is released, whatever happened meanwhile."""
    fd = _locked_fd(path)
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)  # while still held: a waiter then sees a removed file and locks anew
        except OSError:  # Windows cannot remove an open file; the next holder removes it
            pass
        finally:
            _unlock(fd)
            os.close(fd)


def _locked_fd(path: Path) -> int:
    """A descriptor of path holding its lock, which is still the file at path (not one a holder just removed)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
            if _same_file(fd, path):
                return fd
            _unlock(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


if sys.platform == "win32":

    def _lock(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError as error:  # LK_LOCK gives up after about 10 s with EDEADLOCK: keep waiting
                if error.errno != errno.EDEADLOCK:
                    raise

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
