"""The demo's library side: plain-language warnings, downloads, bounded temporary folders."""
import time
import zipfile

import numpy as np

from facerecon import demo
from facerecon.align import CANONICAL_LANDMARKS, crop_affine


def test_small_faces_are_warned_about(reconstructor, astronaut):
    small = astronaut[::8, ::8]  # 64x64 photo: the face is ~12 pixels wide
    try:
        result = demo.reconstruct(reconstructor, small)
    except Exception as e:  # too small to detect at all is an acceptable, explained outcome
        assert "no face" in str(e).lower()
        return
    assert any("small" in w for w in result.warnings)


def test_large_photos_are_warned_about(reconstructor, astronaut, monkeypatch):
    monkeypatch.setattr(demo, "LARGE_PHOTO_PX", 100_000)
    result = demo.reconstruct(reconstructor, astronaut)
    assert any("very large" in w for w in result.warnings) and len(result.faces) == 1


def test_head_turn_measure():
    class Face:
        pass

    frontal, turned = Face(), Face()
    frontal.landmarks5 = CANONICAL_LANDMARKS.copy()
    frontal.crop_affine = crop_affine(frontal.landmarks5)
    turned.landmarks5 = CANONICAL_LANDMARKS.copy()
    turned.landmarks5[2, 0] += 0.5 * 64  # nose half an inter-ocular distance to the side
    turned.crop_affine = crop_affine(turned.landmarks5)
    assert abs(demo.head_turn(frontal)) < 1e-9
    assert abs(demo.head_turn(turned)) > demo.TURN_LIMIT


def test_downloads_hold_every_format(reconstructor, astronaut, tmp_path):
    face = reconstructor(astronaut)[0]
    files = demo.downloads(face, tmp_path)
    assert files["glb"].read_bytes()[:4] == b"glTF"
    with zipfile.ZipFile(files["obj_zip"]) as z:
        names = z.namelist()
    assert any(n.endswith(".obj") for n in names) and any(n.endswith(".mtl") for n in names)
    assert any(n.endswith((".png", ".jpg", ".jpeg")) for n in names)
    assert set(np.load(files["npz"]).files) >= {"mask", "depth"}


def test_output_store_stays_bounded(tmp_path):
    store = demo.OutputStore(tmp_path, max_age_s=3600, max_dirs=3, min_age_s=0)
    dirs = []
    for _ in range(6):
        d = store.new_dir()
        (d / "x.bin").write_bytes(b"0" * 1000)
        dirs.append(d)
        time.sleep(0.01)
    assert len(list(tmp_path.iterdir())) <= 3 and dirs[-1].exists() and not dirs[0].exists()
    young = demo.OutputStore(tmp_path, max_age_s=3600, max_dirs=1, min_age_s=60)
    young.prune()
    assert len(list(tmp_path.iterdir())) == 3  # too young to drop for the count limit
    old = demo.OutputStore(tmp_path, max_age_s=0, max_dirs=100)
    old.prune()
    assert list(tmp_path.iterdir()) == []
