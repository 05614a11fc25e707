"""Inference backends: PyTorch (CUDA when available) and ONNX Runtime (CUDA provider first when present).

Both take a batch of crops as N x 3 x S x S float32 RGB in [0, 1] and return (mask_logits, coarse, detail) as
N x S x S float32 numpy arrays from `run`; `device` says what really ran. torch is imported inside the functions that
need it: the ONNX Runtime path runs an exported model without it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .network import FaceReconNet

ONNX_CACHE = Path.home() / ".cache" / "facerecon" / "onnx"
OUTPUT_NAMES = ["mask_logits", "coarse_depth", "detail"]


class Backend(Protocol):
    name: str
    device: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


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


def cached_onnx_path(weights_file: Path) -> Path:
    """Where the ONNX export of a weights file lives: keyed by the weights' content, so never stale."""
    digest = hashlib.sha256(Path(weights_file).read_bytes()).hexdigest()[:16]
    return ONNX_CACHE / f"facerecon-{digest}.onnx"


class OnnxBackend:
    name = "onnx"

    def __init__(self, onnx_path: Path, device: str = "auto", threads: int = 0):
        import onnxruntime as ort

        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise RuntimeError("device='cuda' was asked for but onnxruntime has no CUDA provider "
                               "(install onnxruntime-gpu instead of onnxruntime)")
        cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
        wanted = ["CUDAExecutionProvider"] if cuda else []
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=wanted + ["CPUExecutionProvider"])
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.provider = self.session.get_providers()[0]

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        outs = self.session.run(OUTPUT_NAMES, {"rgb": np.ascontiguousarray(batch, np.float32)})
        return tuple(o[:, 0] for o in outs)
