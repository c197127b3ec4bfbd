"""Cancelling a download that drips, and closing the viewer while a worker is busy (that download, or a job that
never looks at Cancel): Cancel is answered within a second, the window closes within a second or two and leaves
no partial download, and the process ends cleanly. Each runs in a child whose watchdog fails it after 10 s."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import HANG_LIMIT_S, ROOT

CHILD = """
import os, sys, threading, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from fcn_viewer.gui.main_window import MainWindow
from fcn_viewer.gui.settings import ViewerSettings
from fcn_viewer.weights.loader import RegistrySource
from fcn_viewer.weights.registry import RegistryEntry

url, mode, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
window = MainWindow(ViewerSettings(folder / "settings.ini"))
window.ask_confirmation = lambda title, text: True
window.show()
entry = RegistryEntry(name="far", title="Far", variant="fcn8s", format="safetensors", dataset="camvid",
                      filename="far.safetensors", citation="test", url=url, size_bytes=1_000_000)
part = entry.path.with_name(entry.path.name + ".part")
if mode in ("download", "cancel"):
    window.load_model(RegistrySource(entry))
    ready = lambda: entry.path.with_name(entry.path.name + ".lock").exists() and time.sleep(1.5) is None  # bytes came
else:
    started = threading.Event()
    window.service.jobs.submit(lambda job: started.set() or time.sleep(4) or "late")  # never looks at Cancel
    ready = started.is_set
deadline = time.monotonic() + 20
while time.monotonic() < deadline and not ready():
    app.processEvents()
    time.sleep(0.02)
assert ready(), "the worker never started"

def watchdog():
    time.sleep(LIMIT)
    print(f"still waiting after {LIMIT} s", flush=True)
    os._exit(3)

threading.Thread(target=watchdog, daemon=True).start()
if mode == "cancel":
    answers = []
    window.service.jobs.finished.connect(lambda job, answer: answers.append(answer))
    started_cancel = time.monotonic()
    from PySide6.QtWidgets import QPushButton
    window.download_dialog.findChild(QPushButton).click()
    while not answers:
        app.processEvents()
        time.sleep(0.01)
    print(f"cancelled in {time.monotonic() - started_cancel:.2f} s: {type(answers[0]).__name__}; "
          f"partial file kept: {part.exists()}", flush=True)
started_close = time.monotonic()
window.close()
print(f"closed in {time.monotonic() - started_close:.2f} s; partial file left: {part.exists()}", flush=True)
"""


class _Drip(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            while not self.server.closing.wait(0.5):  # type: ignore[attr-defined]
                self.wfile.write(b"\x01")
                self.wfile.flush()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def drip_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    httpd.daemon_threads = True
    httpd.closing = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        host, port = httpd.server_address[:2]
        yield f"http://{host!s}:{port}/far.safetensors"
    finally:
        httpd.closing.set()  # type: ignore[attr-defined]
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _close_while_busy(tmp_path: Path, url: str, mode: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "resources" / "models").mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", FCN_VIEWER_CACHE=str(tmp_path / "cache"),
               FCN_VIEWER_RESOURCES=str(tmp_path / "resources"), FCN_VIEWER_SETTINGS=str(tmp_path / "env.ini"))
    code = textwrap.dedent(CHILD).replace("LIMIT", repr(HANG_LIMIT_S))
    return subprocess.run([sys.executable, "-c", code, url, mode, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env=env)


def _close_time(child: subprocess.CompletedProcess[str]) -> float:
    assert child.returncode == 0, child.stdout + child.stderr[-3000:]
    line = next(line for line in child.stdout.splitlines() if line.startswith("closed in "))
    return float(line.removeprefix("closed in ").split(" s;")[0])


def test_closing_during_a_dripping_download_is_quick_and_leaves_no_partial_file(tmp_path: Path, drip_url: str) -> None:
    child = _close_while_busy(tmp_path, drip_url, "download")
    assert _close_time(child) < 1.0
    assert "partial file left: False" in child.stdout
    assert sorted(p.name for p in (tmp_path / "cache" / "weights").iterdir()) == []


def test_closing_during_a_job_that_ignores_cancel_abandons_it_and_exits_cleanly(tmp_path: Path) -> None:
    child = _close_while_busy(tmp_path, "http://127.0.0.1:9/unused", "job")
    assert _close_time(child) < 2.0
    assert "Traceback" not in child.stderr and "QThread" not in child.stderr



def test_cancel_during_a_dripping_download_is_answered_within_a_second_and_keeps_the_partial_file(
    tmp_path: Path, drip_url: str
) -> None:
    child = _close_while_busy(tmp_path, drip_url, "cancel")
    assert _close_time(child) < 1.0
    line = next(line for line in child.stdout.splitlines() if line.startswith("cancelled in "))
    assert float(line.removeprefix("cancelled in ").split(" s:")[0]) < 1.0
    assert line.endswith("s: JobCancelled; partial file kept: True")  # for the next try to resume
