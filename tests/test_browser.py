"""Browser test: the demo in headless Debian chromium (driven by playwright-core, no browser download)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from .conftest import EXAMPLES, ROOT, WEIGHTS, AppServer, require_tool

OUTPUT = ROOT / "test-output"


@pytest.mark.slow
def test_upload_example_and_see_the_3d_face():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    require_tool(bool(shutil.which("node") and os.path.exists(chromium)
                      and (ROOT / "node_modules" / "playwright-core").is_dir()),
                 "needs node, Debian's chromium and playwright-core (npm ci)")
    with AppServer(env={"FACERECON_MODEL": str(WEIGHTS)}) as server:
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "browser-demo.png"
        not_an_image = OUTPUT / "not-an-image.jpg"
        not_an_image.write_text("this is a text file with a photo's name")
        res = subprocess.run(["node", str(ROOT / "tools" / "browser_check.js"), server.url, str(shot),
                              str(EXAMPLES / "cat_no_face.png"), str(not_an_image)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "CHROMIUM": chromium})
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["errors"] == []
        # after an error the previous photo's downloads and timings are gone, and one output shows the error
        assert report["filesBefore"] >= 1 and report["afterError"]["files"] == 0, report
        assert report["afterError"]["timings"] == 0 and report["afterError"]["errorBadges"] <= 1, report
        assert report["uploadMessage"], report  # a file that is not an image is refused at upload time
        canvas = np.asarray(Image.open(report["canvas"]).convert("RGB")).astype(np.float32)
        background = np.median(canvas.reshape(-1, 3), axis=0)
        drawn = (np.abs(canvas - background).sum(axis=2) > 30).mean()
        assert drawn > 0.05, f"the 3D viewer looks blank ({drawn:.1%} of its pixels differ from the background)"
