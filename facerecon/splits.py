"""The fixed evaluation split of the real photos, stable across machines."""
import hashlib


def is_held_out(name: str) -> bool:
    """One file name in ten, by hash: never trained on, never used as a synthetic background."""
    return hashlib.sha1(name.encode()).digest()[0] % 10 == 0
