"""The network (one part per file: backbone.py, heads.py, network.py assembles them from config.py), the hub's
weights (hub.py) and the runtimes that run it (backends.py). FaceReconNet is loaded on first use, so that importing
the package, the hub's resolver or the ONNX Runtime backend does not import torch."""
from .config import NetworkConfig

__all__ = ["FaceReconNet", "NetworkConfig"]


def __getattr__(name: str):
    if name == "FaceReconNet":
        from .network import FaceReconNet

        return FaceReconNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
