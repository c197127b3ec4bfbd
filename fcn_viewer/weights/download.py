"""Downloads weight files safely: resumable, hash- and size-checked, from mirrors in turn, refusing web pages,
atomically renamed, locked against concurrent runs (the lock file is removed afterwards).

The network is read on a daemon thread, so whatever a server does the caller is answered in time: Cancel acts
within POLL_S, a transfer with no byte for ``timeout`` seconds stops with an error naming the URL, and no more
than the declared size (plus its tolerance) is ever written, with or without a Content-Length.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import queue
import re
import socket
import sys
import threading
import time
import urllib.response
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

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
POLL_S = 0.1  # how often a waiting download looks at its cancel flag and its stall deadline
# The most any download may write when no size is declared: no FCN weights file is larger
# (weights.validate.MAX_FILE_BYTES, not imported here, which would load torch).
MAX_DOWNLOAD_BYTES = 4 * 1024**3
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
    return usable_cache_dir(path)  # the same fallback folder every run, with a note, when that one is unusable


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

    @property
    def most(self) -> int:
        """The most bytes a file of this size may have: a download stops there."""
        return int(self.size * (1 + self.tolerance))

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
    chunk_size: int = 1 << 16,
) -> Path:
    """Fetch url (or, when it fails, each of ``mirrors`` in turn) into dest, resuming a previous .part, verifying
    the hashes and the size given; returns dest.

    ``timeout`` is both the socket timeout and the stall deadline: a source that sends no byte for that long fails.
    At most ``size.most`` bytes (MAX_DOWNLOAD_BYTES without a size) are written. Raises DownloadCancelled within
    about POLL_S of cancel() returning True (also while another run holds the file's lock), DownloadError on any
    other failure, in one line naming every source tried; dest only ever appears complete and verified, and no
    .lock file is left behind.
    """
    sources = [url, *mirrors]
    for source in sources:
        _check_url(source)
    hashes = (("sha256", sha256), ("sha1", sha1), ("md5", md5))
    expected = {name: value.lower() for name, value in hashes if value}
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(dest.with_name(dest.name + ".lock"), lambda: _cancelled(cancel, url, 0)):
            if dest.exists() and _complete(dest, expected, size):
                return dest
            part = partial_path(dest)
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


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of dest are kept, for the next try to resume."""
    return dest.with_name(dest.name + ".part")


def discard_partial(dest: Path) -> bool:
    """Removes dest's unfinished download (closing the viewer mid-download leaves nothing behind), unless a download
    of dest is running now; returns whether nothing is left."""
    lock = dest.with_name(dest.name + ".lock")
    try:
        with _exclusive_lock(lock, lambda: True):
            partial_path(dest).unlink(missing_ok=True)
        return True
    except (DownloadCancelled, OSError):  # another run holds the lock (and goes on), or the folder is gone
        return not partial_path(dest).exists()


def _cancelled(cancel: Callable[[], bool] | None, url: str, done: int) -> bool:
    """Whether cancel() says so; raises DownloadCancelled (naming url and the bytes kept) when it does."""
    if cancel is not None and cancel():
        raise DownloadCancelled(f"download of {url} cancelled after {done} bytes; run again to resume")
    return False


def _complete(path: Path, expected: dict[str, str], size: ExpectedSize | None) -> bool:
    """Whether an existing file passes every check given (with no hash and no size, any file does)."""
    if size is not None and not size.accepts(path.stat().st_size):
        return False
    return not expected or _matches(path, expected)


def _all_failed(sources: list[str], failures: list[DownloadError]) -> DownloadError:
    """One line naming each source once: the reason once when every source failed the same way (no internet)."""
    if len(failures) == 1:
        return failures[0]
    prefixes = [f"cannot download {source}: " for source in sources]
    reasons = {str(failure).removeprefix(prefix) for failure, prefix in zip(failures, prefixes)}
    if len(reasons) == 1 and all(str(failure).startswith(prefix) for failure, prefix in zip(failures, prefixes)):
        return DownloadError(f"cannot download the file from any of its {len(sources)} sources "
                             f"({', '.join(sources)}): {reasons.pop()}")
    each = " ".join(f"({number}) {failure}" for number, failure in enumerate(failures, start=1))
    return DownloadError(f"cannot download the file from any of its {len(sources)} sources: {each}")


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
    with _Transfer(url, start, timeout, chunk_size) as transfer:
        response = transfer.response(cancel)
        if response.status != 416:
            _receive(url, transfer, response, part, start, size, progress, cancel)
            return
        if _part_complete(part, _unsatisfied_total(response), expected):
            _report(progress, start, start)
            return
    part.unlink()
    with _Transfer(url, 0, timeout, chunk_size) as transfer:
        _receive(url, transfer, transfer.response(cancel), part, 0, size, progress, cancel)


def _receive(
    url: str,
    transfer: _Transfer,
    response: _Response,
    part: Path,
    start: int,
    size: ExpectedSize | None,
    progress: ProgressCallback | None,
    cancel: Callable[[], bool] | None,
) -> None:
    """Check a response's headers against what is expected, then write its body into part."""
    if response.status == 206:
        total = _resumed_total(url, response, part, start)
    else:
        start, total = 0, _content_length(response)
    _refuse_web_page(url, response.headers.get("Content-Type", ""), b"", part)
    most = size.most if size is not None else MAX_DOWNLOAD_BYTES
    if total is not None and (not size.accepts(total) if size is not None else total > most):
        part.unlink(missing_ok=True)
        should = size if size is not None else f"at most {most} bytes"
        raise DownloadError(
            f"{url}: the server offers {total} bytes, but the file should be {should}: not the expected file; "
            "nothing was saved"
        )
    _write_body(url, transfer, part, start, total, most, progress, cancel)


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


class _RedirectHandler(HTTPRedirectHandler):
    """Follows redirects without reading the redirecting answer's body, which a hostile server may never end."""

    def redirect_request(self, req: Request, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Request | None:
        fp.close()  # urllib reads what is left of it next: nothing, once closed
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = build_opener(_RedirectHandler)


def _open(url: str, start: int, timeout: float) -> _Response:
    """Send the request (with a Range header when resuming); a 416 answer is returned, not raised."""
    headers = {"User-Agent": f"fcn-viewer/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response: _Response = _OPENER.open(Request(url, headers=headers), timeout=timeout)
    except HTTPError as error:
        if error.code == 416 and start:
            return error
        error.close()
        if str(error.reason).startswith(HTTPRedirectHandler.inf_msg):
            raise DownloadError(f"cannot download {url}: the server redirects in a loop (or more than "
                                f"{HTTPRedirectHandler.max_redirections} times)") from None
        status = f"HTTP {error.code} {_one_line(error.reason)}"
        raise DownloadError(f"cannot download {url}: the server answered {status}") from None
    except URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise DownloadError(f"cannot download {url}: no answer within {timeout:g} s") from None
        if isinstance(error.reason, socket.gaierror):  # [Errno -2] Name or service not known, or -3
            raise DownloadError(f"cannot download {url}: no internet connection (name lookup failed)") from None
        raise DownloadError(f"cannot download {url}: {_one_line(error.reason)}") from None
    except TimeoutError:
        raise DownloadError(f"cannot download {url}: no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DownloadError(f"cannot download {url}: {_one_line(error) or type(error).__name__}") from None
    return response


def _one_line(reason: object) -> str:
    """A server's or a library's words, on one line."""
    return " ".join(str(reason).split())[:300]


@dataclass(frozen=True)
class _Answer:
    """A response handed between threads (a 416 answer is an HTTPError, which must not be raised as one)."""

    response: _Response


class _Transfer:
    """One request, sent and read on a daemon thread that hands the response, then its body in chunks of at most
    chunk_size, through a small queue. The caller waits in steps of POLL_S, so Cancel and the stall deadline act
    whatever the network does; on close the thread stops at its next chunk (or socket timeout) and closes the
    response."""

    def __init__(self, url: str, start: int, timeout: float, chunk_size: int) -> None:
        self.url = url
        self.timeout = timeout
        self._start = start
        self._chunk_size = chunk_size
        self._queue: queue.Queue[object] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        threading.Thread(target=self._run, name=f"download {url}", daemon=True).start()

    def __enter__(self) -> _Transfer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def response(self, cancel: Callable[[], bool] | None) -> _Response:
        """The answer's status and headers (DownloadError when there is none within the timeout)."""
        item = self._next(cancel, self._start, lambda: f"cannot download {self.url}: no answer within "
                                                       f"{self.timeout:g} s")
        assert isinstance(item, _Answer)
        return item.response

    def chunk(self, cancel: Callable[[], bool] | None, done: int, total: int | None) -> bytes:
        """The body's next bytes (b"" at its end); a read error or a stall becomes DownloadError."""
        def stalled() -> str:
            return _interrupted(self.url, done, total, f": no data for {self.timeout:g} s (stalled)")

        try:
            item = self._next(cancel, done, stalled)
        except TimeoutError:
            raise DownloadError(stalled()) from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise DownloadError(_interrupted(self.url, done, total, f": {_one_line(error)}")) from None
        assert isinstance(item, bytes)
        return item

    def _next(self, cancel: Callable[[], bool] | None, done: int, stalled: Callable[[], str]) -> object:
        """The thread's next item, raised if it is an exception; waits at most a little past the socket timeout,
        which the thread meets first unless it is stuck where none applies (a name lookup, a file)."""
        deadline = time.monotonic() + self.timeout + 2 * POLL_S
        while not _cancelled(cancel, self.url, done):
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise DownloadError(stalled()) from None
                continue
            if isinstance(item, BaseException):
                raise item
            return item
        raise AssertionError("unreachable")  # pragma: no cover: _cancelled raises or returns False

    def _run(self) -> None:
        try:
            response = _open(self.url, self._start, self.timeout)
        except BaseException as error:  # handed to the caller, who raises it
            self._put(error)
            return
        with response:
            if not self._put(_Answer(response)) or response.status == 416:
                return
            while True:
                try:
                    chunk = response.read1(self._chunk_size)
                except BaseException as error:  # handed to the caller, who names the URL
                    self._put(error)
                    return
                if not self._put(chunk) or not chunk:
                    return

    def _put(self, item: object) -> bool:
        """Hands item to the caller unless it closed the transfer; returns whether it was handed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False


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
    transfer: _Transfer,
    part: Path,
    start: int,
    total: int | None,
    most: int,
    progress: ProgressCallback | None,
    cancel: Callable[[], bool] | None,
) -> None:
    """Stream the body into part, appending when resuming (start > 0), truncating otherwise; past ``most`` bytes
    the download stops and part is deleted."""
    done = start
    first = transfer.chunk(cancel, done, total)
    if not start:
        _refuse_web_page(url, "", first, part)
    try:
        with open(part, "ab" if start else "wb") as file:
            _report(progress, done, total)
            chunk = first
            while chunk:
                if done + len(chunk) > most:
                    file.close()
                    part.unlink()
                    raise DownloadError(f"{url}: sent more than {most} bytes, more than the file should have: "
                                        "stopped, and nothing was saved")
                file.write(chunk)
                done += len(chunk)
                _report(progress, done, total)
                chunk = transfer.chunk(cancel, done, total)
    except OSError as error:
        raise _file_error(part, error) from error
    if total is not None and done < total:
        raise DownloadError(_interrupted(url, done, total, ": the server closed the connection"))


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
def _exclusive_lock(path: Path, give_up: Callable[[], bool]) -> Iterator[None]:
    """Hold an exclusive lock on path (created if missing), waiting for other threads or processes in steps of
    POLL_S until give_up() says to stop (it raises, or DownloadCancelled is raised); the file is removed when the
    lock is released, whatever happened meanwhile."""
    fd = _locked_fd(path, give_up)
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


def _locked_fd(path: Path, give_up: Callable[[], bool]) -> int:
    """A descriptor of path holding its lock, which is still the file at path (not one a holder just removed)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if _try_lock(fd):
                if _same_file(fd, path):
                    return fd
                _unlock(fd)
            elif give_up():
                raise DownloadCancelled(f"{path}: another download of this file is running")
            else:
                time.sleep(POLL_S)
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

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError as error:  # held elsewhere: EACCES or EDEADLOCK
            if error.errno not in (errno.EACCES, errno.EDEADLOCK):
                raise
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
