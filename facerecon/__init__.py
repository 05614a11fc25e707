"""facerecon: detailed 3D face reconstruction from one photo.

    import facerecon

    reconstructor = facerecon.FaceReconstructor.from_pretrained()
    for i, face in enumerate(reconstructor("photo.jpg")):      # every face, largest first
        face.export(f"out/face_{i}", formats=("glb", "stl"))   # maps and meshes

The public names are loaded on first use: `import facerecon` is instant, and the results, meshes and files
(FaceReconstruction, build_mesh, export_face) never import torch.
"""
from importlib import import_module

__all__ = ["EmptyFaceError", "FaceMesh", "FaceReconError", "FaceReconstruction", "FaceReconstructor",
           "ImageReadError", "ModelFileError", "NoFaceFound", "build_mesh", "export_face"]

_WHERE = {"FaceReconstructor": ".predictor", "FaceReconstruction": ".result", "build_mesh": ".surface.mesh",
          "FaceMesh": ".surface.mesh",
          "export_face": ".surface.export", "FaceReconError": ".errors", "ImageReadError": ".errors",
          "ModelFileError": ".errors", "NoFaceFound": ".errors", "EmptyFaceError": ".errors"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
