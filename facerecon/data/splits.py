"""The fixed evaluation split of the real photos, stable across machines."""
import hashlib
from pathlib import Path


def is_held_out(name: str) -> bool:
    """One file name in ten, by hash: never trained on, never used as a synthetic background."""
    return hashlib.sha1(name.encode()).digest()[0] % 10 == 0


def photo_files(paths: list[Path], split: str = "all") -> list[Path]:
    """The photos named by paths (folders expand to their .jpg/.png files), sorted; split "train" leaves out the
    held-out ones, "heldout" keeps only them, "all" takes everything."""
    files = sorted(f for p in paths for f in ([p] if p.is_file() else [*p.glob("*.jpg"), *p.glob("*.png")]))
    return files if split == "all" else [f for f in files if is_held_out(f.name) == (split == "heldout")]
