"""The CLI's one error boundary: any exception becomes a one-line message and a documented exit code.

Exit codes (README, "What the app guarantees"):

* 0 — everything asked for was done;
* 1 — some inputs failed (an image, a label, a weights file or a dataset could not be used); the
  others were still processed and each failure was named on stderr;
* 2 — a usage or environment error: a bad option value, an unknown model name, an output that
  cannot be written, a missing device; nothing was processed;
* 3 — an internal error (a bug): the message names it; ``--debug`` shows the traceback;
* 130 — interrupted (Ctrl-C); 143 — terminated (SIGTERM). Outputs are written atomically, so
  neither leaves a partial or temporary file behind.

A rank that `--nproc` started (cli/launch.py) leaves saying "interrupted", "terminated" and "another rank
stopped" to the process that started it, which says it once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from fcn_viewer.errors import DeviceError, FCNViewerError, UsageError
from fcn_viewer.sharding import EXIT_RANK_LOST, RankLost, launched

EXIT_OK, EXIT_INPUT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
DEBUG_ENV = "FCN_VIEWER_DEBUG"


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so every atomic write removes its temporary file."""


def run_guarded(command: Callable[[], int], debug: bool = False) -> int:
    """``command()``'s exit code, or the code of the exception it raised, after a one-line message on stderr."""
    debug = debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        with _terminate_as_exception():
            return int(command())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED if launched() else _fail("interrupted", EXIT_INTERRUPTED, debug)
    except Terminated:
        return EXIT_TERMINATED if launched() else _fail("terminated", EXIT_TERMINATED, debug)
    except RankLost as error:
        return EXIT_RANK_LOST if launched() else _fail(f"error: {error}", EXIT_INPUT_FAILED, debug)
    except (UsageError, DeviceError) as error:
        return _fail(f"error: {error}", EXIT_USAGE, debug)
    except FCNViewerError as error:
        return _fail(f"error: {error}", EXIT_INPUT_FAILED, debug)
    except MemoryError:
        return _fail("error: out of memory", EXIT_INPUT_FAILED, debug)
    except OSError as error:  # the environment: a folder that cannot be created, a full disk, a read-only file system
        return _fail(f"error: {describe_os_error(error)}", EXIT_USAGE, debug)
    except RecursionError:
        return _fail("error: input nested too deeply", EXIT_INPUT_FAILED, debug)
    except Exception as error:
        text = f"internal error: {type(error).__name__}: {one_line(error)}"
        hint = "" if debug else " (run with --debug for the traceback)"
        return _fail(text + hint, EXIT_INTERNAL, debug)


def describe_os_error(error: OSError) -> str:
    """``path: reason`` for an OSError, with both paths of a rename."""
    reason = error.strerror or one_line(error) or type(error).__name__
    if error.filename is None:
        return reason
    where = os.fsdecode(error.filename)
    if error.filename2 is not None:
        where += f" → {os.fsdecode(error.filename2)}"
    return f"{where}: {reason}"


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc(file=sys.stderr)
    print(safe_text(message), file=sys.stderr)
    return code


def printable(text: str) -> str:
    """``text`` (a file name that may hold undecodable bytes as surrogates) with such bytes as ``\\xNN``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_text(text: str) -> str:
    """``text`` with what stderr's encoding cannot show (e.g. a non-UTF-8 file name) escaped, never raising."""
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding, "replace")


@contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
