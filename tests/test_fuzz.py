"""Property test of the whole input path: whatever bytes arrive, the library returns faces or raises one of its
own errors with a message; never another exception, a hang or an unbounded allocation."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from facerecon.errors import FaceReconError, ImageReadError
from facerecon.preprocess.image_io import load_image

MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK"]
FORMATS = {"PNG": {"RGB", "RGBA", "L", "LA", "P", "1", "I;16"}, "JPEG": {"RGB", "L", "CMYK"},
           "GIF": {"P", "L"}, "WEBP": {"RGB", "RGBA"}, "TIFF": {"RGB", "RGBA", "L", "I;16", "CMYK", "1"},
           "BMP": {"RGB", "L", "P", "1"}}
SIZES = [(1, 1), (2, 3), (20000, 20), (20, 20000), (64, 48), (300, 200)]


def encode(size, mode, fmt, orientation, seed) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
    img = img.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    buf = io.BytesIO()
    kwargs = {}
    if fmt == "JPEG" and orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@st.composite
def image_bytes(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(sorted(FORMATS[fmt])))
    size = draw(st.sampled_from(SIZES))
    assume(not (fmt == "WEBP" and max(size) > 16383))  # WebP cannot encode it at all
    data = encode(size, mode, fmt, draw(st.integers(0, 8)), draw(st.integers(0, 2**16)))
    cut = draw(st.one_of(st.none(), st.floats(0.0, 1.0)))
    if cut is not None:  # truncated, or with garbage in the middle
        if draw(st.booleans()):
            data = data[: int(len(data) * cut)]
        else:
            i = int(len(data) * cut)
            data = data[:i] + draw(st.binary(min_size=1, max_size=64)) + data[i + 64:]
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    try:
        out = load_image(data)
    except ImageReadError as e:
        assert str(e)
        return
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(data=image_bytes())
def test_images_through_the_whole_library(reconstructor, data):
    try:
        faces = reconstructor(data)
    except FaceReconError as e:
        assert str(e)
        return
    assert all(f.depth.shape == (256, 256) for f in faces)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(100_000, 100_000), (60_000, 1_000), (2**31 - 1, 2)])
def test_decompression_bombs_are_refused_before_decoding(size):
    with pytest.raises(ImageReadError, match="pixel limit|too many pixels"):
        load_image(png_declaring(*size))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation(orientation):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, 20, 10))  # red top-left quadrant
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(buf.getvalue())
    assert out.shape[:2] == ((20, 40) if orientation <= 4 else (40, 20))
    red = out[..., 0].astype(int) - out[..., 2]
    ys, xs = np.nonzero(red > 100)
    # where the red quadrant ends up, by the EXIF rules (display = the camera's intended view)
    expected = {1: (0, 0), 2: (0, 1), 3: (1, 1), 4: (1, 0), 5: (0, 0), 6: (0, 1), 7: (1, 1), 8: (1, 0)}[orientation]
    h, w = out.shape[:2]
    assert (int(ys.mean() > h / 2), int(xs.mean() > w / 2)) == expected


def test_non_images_with_image_extensions(tmp_path, reconstructor):
    for name, data in [("a.jpg", b"%PDF-1.7\n..."), ("b.png", b"<html></html>"), ("c.gif", b"")]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageReadError):
            reconstructor(path)
