import io

import numpy as np
import pytest
from PIL import Image

from facerecon.errors import ImageReadError
from facerecon.preprocess import image_io
from facerecon.preprocess.image_io import load_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb_test_image(w=40, h=30) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, : w // 2] = [255, 0, 0]  # red top-left quadrant marks the orientation
    return Image.fromarray(arr)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "LA", "I;16", "CMYK", "1"])
def test_every_pixel_mode_becomes_rgb8(mode):
    img = rgb_test_image()
    img = img.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode in ("I;16",) else "PNG"
    out = load_image(encode(img, fmt))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert out[:15, :20].mean() > out[15:, 20:].mean()  # the bright quadrant survived the conversion


def test_exif_orientation_is_honoured():
    img = rgb_test_image(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    out = load_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.shape == (40, 30, 3)
    assert out[:20, 15:, 0].mean() > 200  # red quadrant moved to the top right


def test_transparent_pixels_become_white():
    arr = np.zeros((8, 8, 4), np.uint8)
    out = load_image(encode(Image.fromarray(arr, "RGBA"), "PNG"))
    assert (out == 255).all()


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue())
    assert out[5, 5, 0] > 200 and out[5, 5, 2] < 50


@pytest.mark.parametrize("data", [b"", b"\x00" * 100, b"not an image at all", b"%PDF-1.4 fake"])
def test_non_images_raise_a_clear_error(data):
    with pytest.raises(ImageReadError, match="not an image"):
        load_image(data)


def test_truncated_files_raise_a_clear_error():
    data = encode(Image.fromarray((np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)), "PNG")
    with pytest.raises(ImageReadError, match="damaged or truncated|not an image"):
        load_image(data[: len(data) // 2])


def test_a_tiff_without_its_size_tags_is_a_clear_error():
    """Found by tests/test_fuzz.py: PIL reads this 1x1 TIFF's header, then raises TypeError ("Missing dimensions")."""
    data = (b"II*\x00\x08\x00\x00\x00\x08\x00\x00\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x01"
            b"\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00"
            b"\x06\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x11\x01\x04\x00\x01\x00\x00\x00n\x00\x00"
            b"\x00\x16\x01\x04\x00\x01\x00\x00\x00\x01\x00\x00\x00\x17\x01\x04\x00\x01\x00\x00\x00\x01"
            b"\x00\x00\x00\x1c\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00")
    with pytest.raises(ImageReadError, match="damaged or truncated"):
        load_image(data)


def test_decompression_bombs_are_refused(monkeypatch):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageReadError, match="pixel limit"):
        load_image(encode(Image.new("L", (200, 200)), "PNG"))


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_arrays_are_accepted():
    assert load_image(np.zeros((5, 6), np.uint16)).shape == (5, 6, 3)
    assert load_image(np.ones((5, 6, 4), np.float32))[0, 0, 0] == 255
    with pytest.raises(ImageReadError):
        load_image(np.zeros((5, 6, 2), np.uint8))
