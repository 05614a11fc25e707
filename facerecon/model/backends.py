"""Inference backends: PyTorch (CUDA when available); ONNX Runtime (CUDA provider first when present) with the float
network or the int8 one (facerecon.model.quantize); OpenVINO's CPU runtime with the same int8 file. load_backend picks
one for a model folder.

Both take a batch of crops as N x 3 x S x S float32 RGB in [0, 1] and return (mask_logits, coarse, detail) as
N x S x S float32 numpy arrays from `run`; `device` says what really ran. torch is imported inside the functions that
need it: the ONNX Runtime path runs an exported model without it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .network import FaceReconNet

log = logging.getLogger("facerecon")

ONNX_CACHE = Path.home() / ".cache" / "facerecon" / "onnx"
OPENVINO_CACHE = Path.home() / ".cache" / "facerecon" / "openvino"  # OpenVINO's compiled networks (its CACHE_DIR)
OUTPUT_NAMES = ["mask_logits", "coarse_depth", "detail"]
BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "openvino-int8")  # FaceReconstructor.from_pretrained's choices


class Backend(Protocol):
    name: str
    device: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cuda_present() -> bool:
    """Whether torch can use a CUDA GPU here, asked only where the NVIDIA driver's device file exists: importing torch
    takes about a second of start-up, which a machine without a GPU should not pay."""
    if not Path("/dev/nvidiactl").exists():
        return False
    import torch

    return torch.cuda.is_available()


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


class TorchBackend:
    name = "torch"

    def __init__(self, model: FaceReconNet, device: str = "auto"):
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            outs = self.model(torch.from_numpy(batch).to(self.device))
            return tuple(o[:, 0].float().cpu().numpy() for o in outs)


def export_onnx(model: FaceReconNet, path: Path, size: int = 256) -> Path:
    """Export with a dynamic batch axis (torch.export-based exporter), written atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    tmp = path.with_name(path.name + ".tmp")
    torch.onnx.export(model, (torch.rand(2, 3, size, size),), str(tmp), input_names=["rgb"], output_names=OUTPUT_NAMES,
                      dynamic_shapes={"rgb": {0: torch.export.Dim("batch", max=64)}}, dynamo=True,
                      external_data=False, verbose=False)
    tmp.replace(path)
    return path


def weights_digest(weights_file: Path) -> str:
    """SHA-256 of a weights file: what the cached float export and the int8 model are keyed by."""
    return hashlib.sha256(Path(weights_file).read_bytes()).hexdigest()


def cached_onnx_path(weights_file: Path) -> Path:
    """Where the ONNX export of a weights file lives: keyed by the weights' content, so never stale."""
    return ONNX_CACHE / f"facerecon-{weights_digest(weights_file)[:16]}.onnx"


def float_onnx(folder: Path) -> Path:
    """The float ONNX model of a model folder: its own model.onnx, else the cached export of its weights (made on
    first use)."""
    from .hub import WEIGHTS_NAME, load_pretrained

    path = Path(folder) / "model.onnx"
    if path.is_file():
        return path
    path = cached_onnx_path(Path(folder) / WEIGHTS_NAME)
    if not path.is_file():
        export_onnx(load_pretrained(folder), path)
    return path


class OnnxBackend:
    def __init__(self, onnx_path: Path, device: str = "auto", threads: int = 0, name: str = "onnx"):
        import onnxruntime as ort

        self.name = name
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise RuntimeError("device='cuda' was asked for but onnxruntime has no CUDA provider "
                               "(install onnxruntime-gpu instead of onnxruntime)")
        cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
        wanted = ["CUDAExecutionProvider"] if cuda else []
        options = ort.SessionOptions()
        # one thread per usable core, set explicitly: left at 0, onnxruntime pins its worker threads to cores, and on
        # a 2-core machine the unpinned calling thread then shared a core with one of them in about a third of
        # launches (int8 network 29 ms instead of 21; docs/speed.md)
        options.intra_op_num_threads = threads or usable_cores()
        # the int8 graph's float convolutions are mostly the heads' 1-channel outputs, which onnxruntime's NCHWc
        # layout pads to 16 output channels (16 times their work); without that layout the int8 network runs about
        # 7% faster; the float graph keeps it (30% slower without; docs/speed.md)
        disabled = ["NchwcTransformer"] if name == "onnx-int8" else []
        self.session = ort.InferenceSession(str(onnx_path), options, providers=wanted + ["CPUExecutionProvider"],
                                            disabled_optimizers=disabled)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.provider = self.session.get_providers()[0]

    @property
    def metadata(self) -> dict[str, str]:
        """The model file's own metadata (ONNX metadata_props)."""
        return self.session.get_modelmeta().custom_metadata_map

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        outs = self.session.run(OUTPUT_NAMES, {"rgb": np.ascontiguousarray(batch, np.float32)})
        return tuple(o[:, 0] for o in outs)


class OpenVinoBackend:
    """An ONNX file in OpenVINO's CPU runtime (oneDNN), compiled once per batch size: a network of fixed shapes ran
    the int8 file about 20% faster than one with a free batch size, and the predictor calls it with 1 or 2 crops.
    Compiled networks are cached on disk (OPENVINO_CACHE), so a later process loads one in about 0.3 s instead of
    compiling it in 0.8 s. An infer request runs one call at a time, and the demo serves two requests at once: a
    lock takes them in turn (on a 2-core CPU two networks at once would share the cores anyway)."""

    device = "cpu"
    provider = "OpenVINO CPU"

    def __init__(self, onnx_path: Path, threads: int = 0, name: str = "openvino-int8"):
        self.name = name
        self.core = openvino_core()
        self.model = self.core.read_model(str(onnx_path))
        # float32 for the graph's float parts (the coarse head and the output convolutions, which quantize.py keeps
        # float): on a CPU with bfloat16 units OpenVINO would run them in bfloat16, 8% faster, but its maps come out
        # in bfloat16's steps (the coarse depth in 0.125 crop px near the face's 28; docs/speed.md)
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or usable_cores(),
                       "INFERENCE_PRECISION_HINT": "f32"}
        self.requests = {}
        self.lock = threading.Lock()

    @property
    def metadata(self) -> dict[str, str]:
        """The ONNX file's metadata_props, as OpenVINO keeps them (its rt_info under "framework")."""
        info = self.model.get_rt_info()
        if "framework" not in info.keys():
            return {}
        return {k: v.astype(str) for k, v in info["framework"].items()}

    def request(self, n: int):
        """The compiled network for batches of n crops (compiled on first use)."""
        if n not in self.requests:
            model = self.model.clone()
            model.reshape({"rgb": [n, *self.model.input("rgb").get_partial_shape()[1:].to_shape()]})
            self.requests[n] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.requests[n]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self.lock:
            outs = self.request(len(batch)).infer({"rgb": np.ascontiguousarray(batch, np.float32)})  # copies out
        return tuple(outs[name][:, 0] for name in OUTPUT_NAMES)


def openvino_core():
    """An OpenVINO Core that caches what it compiles in OPENVINO_CACHE (the network here, the face models in
    preprocess.face_models): a later process loads a compiled model instead of compiling it again."""
    import openvino as ov

    core = ov.Core()
    OPENVINO_CACHE.mkdir(parents=True, exist_ok=True)
    core.set_property({"CACHE_DIR": str(OPENVINO_CACHE)})
    return core


def openvino_present() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def int8_backend(folder: Path, device: str = "auto", threads: int = 0,
                 runtime: str = "onnxruntime") -> OnnxBackend | OpenVinoBackend:
    """The model folder's quantized network (facerecon.model.quantize) in onnxruntime or OpenVINO (runtime
    "openvino"; CPU only); ModelFileError when the folder has none, an unreadable one, or one not made from the
    weights beside it."""
    from ..errors import ModelFileError
    from .hub import INT8_NAME, WEIGHTS_NAME
    from .quantize import check_int8

    path = Path(folder) / INT8_NAME
    if not path.is_file():
        raise ModelFileError(f"{path}: no int8 model here (make one with `facerecon quantize`, or use the onnx or "
                             "torch backend)")
    if runtime == "openvino" and device == "cuda":
        raise RuntimeError("backend openvino-int8 runs on the CPU only (use torch or onnx on a CUDA GPU)")
    try:
        if runtime == "openvino":
            backend = OpenVinoBackend(path, threads)
        else:
            backend = OnnxBackend(path, device, threads, name="onnx-int8")
    except Exception as e:  # noqa: BLE001 - onnxruntime's InvalidProtobuf, InvalidGraph, Fail...; OpenVINO's
        if runtime == "onnxruntime" and type(e) is RuntimeError:  # ours: no CUDA provider
            raise
        raise ModelFileError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    check_int8(backend.metadata, path, Path(folder) / WEIGHTS_NAME)
    return backend


def load_backend(folder: Path, backend: str = "auto", device: str = "auto") -> Backend:
    """The network of a model folder in one of BACKENDS: torch; onnx (the float network, float_onnx); onnx-int8 and
    openvino-int8 (int8_backend); auto: torch on a CUDA GPU (device='cuda', or 'auto' where cuda_present;
    onnxruntime's CUDA provider is a separate wheel), else the folder's int8 model in OpenVINO where it is installed
    (about twice as fast as onnxruntime's on this workplace's CPU; docs/speed.md), else in onnxruntime, else onnx."""
    from ..errors import ModelFileError
    from .hub import load_pretrained

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "auto" and (device == "cuda" or device == "auto" and cuda_present()):
        backend = "torch"
    if backend == "auto":
        runtimes = ["openvino", "onnxruntime"] if openvino_present() else ["onnxruntime"]
        for runtime in runtimes:
            try:
                return int8_backend(folder, device, runtime=runtime)
            except ModelFileError as e:
                log.info("the int8 model in %s: %s", runtime, e)
        log.info("no int8 model to use: running the float network in onnxruntime")
        backend = "onnx"
    if backend == "torch":
        return TorchBackend(load_pretrained(folder), device)
    if backend in ("onnx-int8", "openvino-int8"):
        return int8_backend(folder, device, runtime="openvino" if backend == "openvino-int8" else "onnxruntime")
    return OnnxBackend(float_onnx(folder), device)
