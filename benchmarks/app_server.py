"""Start the web demo as a subprocess on a free local port, for the app benchmarks and the tests that need a real
server (tests/conftest.py imports it)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """with AppServer() as app: app.url, app.pid, app.ready_s (seconds from launch to the page answering)."""

    def __init__(self, timeout_s: float = 120, log: Path | None = None, env: dict[str, str] | None = None):
        """log: a file for the app's stdout and stderr (default: $FACERECON_APP_LOG, else discarded); env: variables
        set for the app on top of this process's."""
        self.port, self.timeout_s, self.env = free_port(), timeout_s, env or {}
        self.log = log or (Path(os.environ["FACERECON_APP_LOG"]) if os.environ.get("FACERECON_APP_LOG") else None)
        self.url = f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> AppServer:
        env = {**os.environ, "FACERECON_MODEL": os.environ.get("FACERECON_MODEL", str(ROOT / "facerecon" / "weights")),
               **self.env}
        t0 = time.perf_counter()
        out = open(self.log, "w") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=ROOT, env=env,
                                     stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        while time.perf_counter() - t0 < self.timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError("the app exited during start-up")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                self.ready_s = time.perf_counter() - t0
                return self
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"the app did not answer within {self.timeout_s} s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
