"""Shared fixtures. Real images: examples/astronaut.png (NASA, public domain) and examples/cat_no_face.png (CC0)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"


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

    return FaceReconstructor.from_pretrained(ROOT / "facerecon" / "weights", backend="torch", device="cpu", detector=detector)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ict_facekit").is_dir():
        pytest.skip("../shared/data is not present: the real face model is needed for this test")
    return SHARED_DATA
