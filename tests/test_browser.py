"""Browser test: the demo in headless Debian chromium (driven by playwright-core, no browser download)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT, WEIGHTS, require_tool

OUTPUT = ROOT / "test-output"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_upload_example_and_see_the_3d_face():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    require_tool(bool(shutil.which("node") and os.path.exists(chromium)
                      and (ROOT / "node_modules" / "playwright-core").is_dir()),
                 "needs node, Debian's chromium and playwright-core (npm ci)")
    port = free_port()
    env = {**os.environ, "FACERECON_MODEL": str(WEIGHTS)}
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "browser-demo.png"
        res = subprocess.run(["node", str(ROOT / "tools" / "browser_check.js"), url, str(shot)], capture_output=True,
                             text=True, timeout=300, env={**os.environ, "CHROMIUM": chromium})
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["errors"] == []
        canvas = np.asarray(Image.open(report["canvas"]).convert("RGB")).astype(np.float32)
        background = np.median(canvas.reshape(-1, 3), axis=0)
        drawn = (np.abs(canvas - background).sum(axis=2) > 30).mean()
        assert drawn > 0.05, f"the 3D viewer looks blank ({drawn:.1%} of its pixels differ from the background)"
    finally:
        server.terminate()
        server.wait(timeout=30)
