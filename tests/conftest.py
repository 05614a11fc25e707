"""Shared fixtures. Real images: examples/astronaut.png (NASA, public domain) and examples/cat_no_face.png (CC0)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WEIGHTS = ROOT / "facerecon" / "weights"
sys.path.insert(0, str(ROOT / "benchmarks"))
from app_server import AppServer  # noqa: E402,F401 - the web demo as a subprocess, shared with the benchmarks

SHARED_DATA = ROOT.parent / "shared" / "data"


def require_tool(present: bool, why: str) -> None:
    """A test tool that is missing (the browser, the glTF validator) skips the test on a developer's machine and
    fails it in CI (CI=true): .ci/run installs them, so CI never passes without running the check."""
    if not present:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from facerecon.preprocess.image_io import load_image

    return load_image(EXAMPLES / "astronaut.png")


@pytest.fixture(scope="session")
def detector():
    from facerecon.preprocess.detect import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def reconstructor(detector):
    from facerecon.predictor import FaceReconstructor

    return FaceReconstructor.from_pretrained(WEIGHTS, backend="torch", device="cpu", detector=detector)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ict_facekit").is_dir():
        pytest.skip("../shared/data is not present: the real face model is needed for this test")
    return SHARED_DATA
