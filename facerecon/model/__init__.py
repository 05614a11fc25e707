from .config import NetworkConfig
from .network import FaceReconNet

__all__ = ["FaceReconNet", "NetworkConfig"]
