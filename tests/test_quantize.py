"""The int8 network (facerecon.model.quantize): close to the float one in onnxruntime and in OpenVINO, its maps still
float, refused when stale, made by `facerecon quantize`, picked by backend auto."""
import shutil

import numpy as np
import pytest

from facerecon.apps.cli import main
from facerecon.data.shards import write_shard
from facerecon.errors import ModelFileError
from facerecon.model.backends import OnnxBackend, float_onnx, int8_backend, load_backend
from facerecon.model.hub import INT8_NAME, save_pretrained
from facerecon.predictor import FaceReconstructor, to_batch
from facerecon.preprocess.align import SMILE_STEADY_FRAMING

from .conftest import WEIGHTS
from .test_hub import tiny_model


@pytest.fixture(scope="module")
def crops(reconstructor, astronaut) -> np.ndarray:
    """The network's own crops (the returned crop_rgb is in the maps' frame) of a photo with two faces."""
    photo = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    return reconstructor.crop(photo, reconstructor.detect(photo)).rgb


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    from facerecon.model import backends

    monkeypatch.setattr(backends, "ONNX_CACHE", tmp_path / "onnx_cache")
    monkeypatch.setattr(backends, "OPENVINO_CACHE", tmp_path / "openvino_cache")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_bundled_int8_network_stays_close_to_the_float_one(crops, runtime):
    batch = to_batch(crops)
    (logits, coarse, detail) = OnnxBackend(float_onnx(WEIGHTS), "cpu").run(batch)
    (logits8, coarse8, detail8) = int8_backend(WEIGHTS, "cpu", runtime=runtime).run(batch)
    inside = logits > 0
    assert ((logits8 > 0) == inside).mean() > 0.99
    for i in range(len(crops)):  # the coarse depth as the predictor uses it: shifted to zero mean over the face
        a, b = coarse[i][inside[i]], coarse8[i][inside[i]]
        assert np.abs((a - a.mean()) - (b - b.mean())).mean() < 0.6  # crop px; the face's relief spans about 60
    assert np.abs(detail8 - detail)[inside].mean() < 0.05
    # the maps are not stepped by 8 bits: the heads' outputs stayed float
    for out in (coarse8, detail8, logits8):
        assert len(np.unique(out[0][inside[0]])) > 2000


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_int8_model_of_other_weights_is_refused(tmp_path, runtime):
    folder = save_pretrained(tiny_model(1), tmp_path / "m")
    shutil.copy(WEIGHTS / INT8_NAME, folder / INT8_NAME)
    with pytest.raises(ModelFileError, match="was not made from"):
        int8_backend(folder, "cpu", runtime=runtime)
    assert load_backend(folder, "auto", "cpu").name == "onnx"  # the float network instead
    (folder / INT8_NAME).write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        int8_backend(folder, "cpu", runtime=runtime)


def test_openvino_backend_serves_two_threads_at_once(crops):
    """The demo runs two requests at once; OpenVINO's infer request takes one call at a time."""
    from concurrent.futures import ThreadPoolExecutor

    backend = int8_backend(WEIGHTS, "cpu", runtime="openvino")
    batches = [to_batch(crops[:1]), to_batch(crops[1:]), to_batch(crops), to_batch(crops[::-1])] * 3
    alone = [backend.run(b)[1] for b in batches]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda b: backend.run(b)[1], batches))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)


def test_openvino_runs_on_the_cpu_only():
    with pytest.raises(RuntimeError, match="CPU only"):
        int8_backend(WEIGHTS, "cuda", runtime="openvino")


def test_quantize_command_makes_the_model_auto_then_runs(tmp_path, monkeypatch, detector, astronaut, capsys):
    from facerecon.model import backends

    folder = save_pretrained(tiny_model(2), tmp_path / "tiny")
    rng = np.random.default_rng(0)
    write_shard(tmp_path / "shards" / "shard_00000.npz",
                [{"image": rng.integers(0, 256, (256, 256, 3), np.uint8), "mask": np.ones((256, 256), np.uint8),
                  "coarse": np.zeros((256, 256)), "detail": np.zeros((256, 256)), "valid_coarse": True,
                  "valid_detail": True, "params": {}} for _ in range(10)], "test")
    assert load_backend(folder, "auto", "cpu").name == "onnx"  # none yet
    assert main(["quantize", "--shards", str(tmp_path / "shards"), "--count", "8", "--model", str(folder)]) == 0
    assert f"wrote {folder / INT8_NAME} (calibrated on 8 crops)" in capsys.readouterr().out
    reconstructor = FaceReconstructor.from_pretrained(folder, device="cpu", detector=detector)
    assert reconstructor.backend.name == "openvino-int8"  # OpenVINO where it is installed (it is a dependency)
    with pytest.raises(RuntimeError, match="torch sees no CUDA device"):  # auto with device cuda is torch's
        load_backend(folder, "auto", "cuda")
    monkeypatch.setattr(backends, "openvino_present", lambda: False)
    assert load_backend(folder, "auto", "cpu").name == "onnx-int8"  # else onnxruntime's
    monkeypatch.setattr(backends, "cuda_present", lambda: True)  # a GPU host: auto runs torch there
    assert load_backend(folder, "auto", "auto").name == "torch"
    assert load_backend(folder, "auto", "cpu").name == "onnx-int8"  # unless the CPU is asked for
    face = reconstructor(astronaut)[0]
    assert face.coarse_depth.shape == (256, 256) and np.isfinite(face.coarse_depth).all()
    assert main(["quantize", "--shards", str(tmp_path / "none"), "--model", str(folder)]) == 2
    assert "no shard_*.npz files there" in capsys.readouterr().err
    assert main(["quantize", "--shards", str(tmp_path / "shards"), "--count", "0", "--model", str(folder)]) == 2
    assert "--count must be at least 1" in capsys.readouterr().err
    steady = tmp_path / "steady" / "shard_00000.npz"  # crops framed otherwise than the model's were
    with np.load(tmp_path / "shards" / "shard_00000.npz") as z:
        write_shard(steady, [{"image": image, "mask": np.ones((256, 256), np.uint8), "coarse": np.zeros((256, 256)),
                              "detail": np.zeros((256, 256)), "valid_coarse": True, "valid_detail": True, "params": {}}
                             for image in z["image"]], "test", SMILE_STEADY_FRAMING)
    assert main(["quantize", "--shards", str(steady.parent), "--model", str(folder)]) == 2
    assert "framed" in capsys.readouterr().err


def test_a_one_channel_convolution_split_into_its_taps_gives_the_same_map():
    """quantize.split_taps: a 3x3 convolution to one channel, as a 1x1 to its 9 taps and their shifted sum."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from facerecon.model.quantize import split_taps

    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 5, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="out", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["x", "w4"], ["z"], name="four", kernel_shape=[3, 3])],  # 4 channels: kept
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 12, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 12, 9]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, 10, 7])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([0.5], np.float32), "b"),
         numpy_helper.from_array(rng.normal(size=(4, 5, 3, 3)).astype(np.float32), "w4")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(size=(1, 5, 12, 9)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert split_taps(model) == 1
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Conv", "Conv", "Conv"]
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(after[0], before[0], atol=1e-5)
    np.testing.assert_array_equal(after[1], before[1])


def test_the_block_stage_output_stays_float_in_the_int8_network(tmp_path):
    """heads.BlockStage's output convolution (four channels, placed by a DepthToSpace) is a map, not a feature."""
    import dataclasses

    import onnx
    import torch

    from facerecon.model import FaceReconNet
    from facerecon.model.backends import export_onnx
    from facerecon.model.quantize import quantize_int8

    from .test_hub import TINY

    torch.manual_seed(0)
    model = FaceReconNet(dataclasses.replace(TINY, full_res_detail=True, full_res_blocks=True)).eval()
    torch.nn.init.normal_(model.full_res.out.weight, std=0.1)
    weights = tmp_path / "weights"
    weights.write_bytes(b"stand-in")
    crops = np.random.default_rng(0).integers(0, 256, (8, 256, 256, 3), np.uint8)
    int8 = quantize_int8(export_onnx(model, tmp_path / "float.onnx"), tmp_path / "int8.onnx", crops, weights)
    graph = onnx.load(str(int8)).graph
    producer = {out: n for n in graph.node for out in n.output}
    (place,) = [n for n in graph.node if n.op_type == "DepthToSpace"]
    conv = producer[place.input[0]]
    assert conv.op_type == "Conv" and producer[conv.input[0]].op_type == "DequantizeLinear"  # reads 8-bit features
    assert conv.input[1] in {t.name for t in graph.initializer}  # its own weights float, not dequantized
    assert all(producer[i].op_type != "DequantizeLinear" for i in place.input)
    batch = to_batch(crops[:2])
    detail = OnnxBackend(tmp_path / "float.onnx", "cpu").run(batch)[2]
    detail8 = OnnxBackend(int8, "cpu", name="onnx-int8").run(batch)[2]
    assert len(np.unique(detail8[0])) > 2000  # not stepped by 8 bits
    assert np.abs(detail8 - detail).mean() < 0.1 * np.abs(detail).mean()
