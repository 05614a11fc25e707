"""Decode any image a user may hand us into an 8-bit RGB array, honouring EXIF orientation."""
from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageReadError

# Settings (environment variables override them): refuse decompression bombs and huge uploads early.
MAX_PIXELS = int(os.environ.get("FACERECON_MAX_PIXELS", 50_000_000))
MAX_BYTES = int(os.environ.get("FACERECON_MAX_BYTES", 50 * 1024 * 1024))

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image


def load_image(source: ImageInput) -> np.ndarray:
    """Return H x W x 3 uint8 RGB. Arrays are taken as RGB (H x W, H x W x 3 or x 4; uint8, uint16 or float 0..1)."""
    if isinstance(source, np.ndarray):
        return _array_to_rgb8(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb8(source.copy())  # the caller's image stays as it was (the conversion works in place)
    data, name = _read(source)
    with _opened(data, name) as img:
        if img.format == "JPEG" and img.mode == "RGB":
            rgb = _decode_jpeg(data)
            if rgb is not None:  # else (a truncated file) PIL's decoder says what is wrong
                return rgb
        try:
            img.load()
            return _pil_to_rgb8(img)
        # truncated or corrupt streams; PIL raises TypeError ("Missing dimensions") for a TIFF that lost its size tags
        except (OSError, ValueError, SyntaxError, EOFError, TypeError) as e:
            raise ImageReadError(f"{name}: the image data is damaged or truncated ({e})") from None


def probe_image(source: str | os.PathLike | bytes) -> tuple[int, int]:
    """(width, height) from the file's header, with every check load_image makes before decoding: a quick answer
    to "is this a photo we can read?" (a damaged body is only found when it is decoded)."""
    data, name = _read(source)
    with _opened(data, name) as img:
        return img.size


def _read(source: str | os.PathLike | bytes) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "the uploaded data"
    else:
        path = Path(source)
        name = str(path)
        if path.is_dir():
            raise ImageReadError(f"{name}: is a folder, not an image file")
        if not path.is_file():
            raise ImageReadError(f"{name}: no such file")
        if path.stat().st_size > MAX_BYTES:
            raise ImageReadError(f"{name}: file is larger than the {MAX_BYTES // 2**20} MiB limit")
        data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise ImageReadError(f"{name}: larger than the {MAX_BYTES // 2**20} MiB limit")
    return data, name


@contextmanager
def _opened(data: bytes, name: str) -> Iterator[Image.Image]:
    """The image, opened (header only) and within MAX_PIXELS; ImageReadError for anything else."""
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not an image, or a format that cannot be read") from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{name}: refused, the image declares too many pixels ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt headers
        raise ImageReadError(f"{name}: the image data is damaged or truncated ({e})") from None
    with img:
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageReadError(f"{name}: {w}x{h} pixels is more than the {MAX_PIXELS:,}-pixel limit")
        yield img


def _decode_jpeg(data: bytes) -> np.ndarray | None:
    """An RGB JPEG decoded by OpenCV, EXIF orientation applied (its default, as ImageOps.exif_transpose does for
    PIL's): the same pixels as PIL's decoder (both are libjpeg-turbo) in about half the time, as OpenCV writes 3-byte
    pixels where PIL keeps 4 and repacks them for numpy (a 1280x1280 photo: 5 against 9-15 ms; docs/speed.md).
    None where OpenCV cannot decode it."""
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    return None if rgb is None or rgb.ndim != 3 else rgb


def _pil_to_rgb8(img: Image.Image) -> np.ndarray:
    # copies are what a large photo costs (4 bytes a pixel inside PIL, 3 in the array): rotate in place, convert
    # only other modes, and copy out once (a 49-megapixel PNG peaked at 875 MB with a copy at each step)
    ImageOps.exif_transpose(img, in_place=True)
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)  # animated images: the first frame
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        return _array_to_rgb8(np.clip(arr / hi, 0, 1))
    if img.mode == "F":
        return _array_to_rgb8(np.asarray(img, dtype=np.float64))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))  # transparent -> white
        img = Image.alpha_composite(background, img)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8).copy()


def _array_to_rgb8(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise ImageReadError(f"expected an H x W, H x W x 3 or H x W x 4 array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        out = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise ImageReadError(f"unsupported array dtype {arr.dtype}")
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out[:, :, :3])
