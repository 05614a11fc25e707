import numpy as np
import pytest

from facerecon.model.backends import OnnxBackend, TorchBackend, export_onnx
from facerecon.model.hub import load_pretrained
from facerecon.predictor import FaceReconstructor, to_batch

from .conftest import WEIGHTS


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return export_onnx(load_pretrained(WEIGHTS), tmp_path_factory.mktemp("onnx") / "model.onnx")


def test_onnx_matches_torch_on_real_crops(onnx_path, reconstructor, astronaut):
    faces = reconstructor(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))
    batch = to_batch(np.stack([f.crop_rgb for f in faces]))
    torch_out = TorchBackend(load_pretrained(WEIGHTS), "cpu").run(batch)
    onnx = OnnxBackend(onnx_path, "auto")
    assert onnx.device == "cpu" and onnx.provider == "CPUExecutionProvider"  # no GPU here: it says so
    for a, b in zip(torch_out, onnx.run(batch)):
        assert a.shape == b.shape == (2, 256, 256)
        assert np.abs(a - b).max() <= 1e-3


def test_onnx_backend_through_the_predictor(onnx_path, detector, astronaut, monkeypatch):
    from facerecon.model import backends

    monkeypatch.setattr(backends, "ONNX_CACHE", onnx_path.parent / "cache")
    r = FaceReconstructor.from_pretrained(WEIGHTS, backend="onnx", device="cpu", detector=detector)
    assert r.device == "cpu" and len(r(astronaut)) == 1
    assert list((onnx_path.parent / "cache").glob("facerecon-*.onnx"))  # exported once, cached by content
