"""The demo's library side: plain-language warnings, downloads, saved faces, a bounded file cache."""
import time
import zipfile

import cv2
import numpy as np

from facerecon import FaceReconstruction, checks
from facerecon.apps import demo
from facerecon.preprocess.align import CANONICAL_LANDMARKS, crop_affine

from .conftest import EXAMPLES


def test_small_faces_are_warned_about(reconstructor, astronaut):
    small = astronaut[::8, ::8]  # 64x64 photo: the face is ~12 pixels wide
    try:
        result = demo.reconstruct(reconstructor, small)
    except Exception as e:  # too small to detect at all is an acceptable, explained outcome
        assert "no face" in str(e).lower()
        return
    assert any("small" in w for w in result.warnings)


def test_large_photos_are_warned_about(reconstructor, astronaut, monkeypatch):
    monkeypatch.setattr(checks, "LARGE_PHOTO_PX", 100_000)
    result = demo.reconstruct(reconstructor, astronaut)
    assert any("very large" in w for w in result.warnings) and len(result.faces) == 1


def test_one_set_of_warnings_in_the_result_and_on_the_page(reconstructor, detector, astronaut, monkeypatch):
    """Faces the cap leaves out and a blurred face are warned about in FaceReconstruction.warnings; the page says
    the photo's warning once and names the face a face's warning concerns."""
    two = np.concatenate([astronaut, cv2.GaussianBlur(astronaut, (0, 0), 3)[:, ::-1]], axis=1)
    faces = reconstructor(two)
    assert len(faces) == 2
    blurred = [f for f in faces if (f.box[0] + f.box[2]) / 2 > astronaut.shape[1]]
    assert any("hardly recognised" in w for w in blurred[0].warnings), blurred[0].warnings
    monkeypatch.setattr(detector, "max_faces", 1)
    result = demo.reconstruct(reconstructor, two)
    assert result.faces[0].warnings[-1].startswith("1 more face in the photo was left out (at most 1 face a photo")
    assert sum("left out" in w for w in result.warnings) == 1
    monkeypatch.setattr(detector, "max_faces", 8)
    result = demo.reconstruct(reconstructor, two)
    assert any(w.startswith(("Face 1 is hardly", "Face 2 is hardly")) for w in result.warnings), result.warnings


def test_head_turn_measure():
    class Face:
        pass

    frontal, turned = Face(), Face()
    frontal.landmarks5 = CANONICAL_LANDMARKS.copy()
    frontal.crop_affine = crop_affine(frontal.landmarks5)
    turned.landmarks5 = CANONICAL_LANDMARKS.copy()
    turned.landmarks5[2, 0] += 0.5 * 64  # nose half an inter-ocular distance to the side
    turned.crop_affine = crop_affine(turned.landmarks5)
    assert abs(checks.head_turn(frontal.crop_affine, frontal.landmarks5)) < 1e-9
    assert abs(checks.head_turn(turned.crop_affine, turned.landmarks5)) > checks.TURN_LIMIT


def test_downloads_hold_every_format(reconstructor, astronaut, tmp_path):
    face = reconstructor(astronaut)[0]
    files = demo.downloads(face, tmp_path)
    assert files["glb"].read_bytes()[:4] == b"glTF"
    with zipfile.ZipFile(files["obj_zip"]) as z:
        names = z.namelist()
    assert any(n.endswith(".obj") for n in names) and any(n.endswith(".mtl") for n in names)
    assert any(n.endswith((".png", ".jpg", ".jpeg")) for n in names)
    assert set(np.load(files["npz"]).files) >= {"mask", "depth"}


def test_faces_saved_for_the_session_load_back(reconstructor, astronaut, tmp_path):
    face = reconstructor(astronaut)[0]
    saved = demo.save_faces([face], tmp_path)
    back = FaceReconstruction.load(saved[0]["arrays"])
    for name in ("mask", "coarse_depth", "detail", "crop_affine", "crop_rgb", "texture_rgb", "box", "landmarks5"):
        np.testing.assert_array_equal(getattr(back, name), getattr(face, name))
    assert back.score == face.score and cv2.imread(saved[0]["crop"]).shape == (256, 256, 3)
    pics = demo.picture_files(back, tmp_path)
    assert all(cv2.imread(str(p)).shape == (256, 256, 3) for p in pics.values())


def test_the_warm_up_leaves_no_files_and_survives_a_bad_photo(reconstructor, tmp_path, monkeypatch, caplog):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its folder is made, and deleted
    made, downloads = [], demo.downloads
    monkeypatch.setattr(demo, "downloads", lambda *args: made.append(downloads(*args)))  # the real one, watched
    demo.warm_up(reconstructor, EXAMPLES / "astronaut.png").join(120)
    assert made and made[0]["glb"].is_relative_to(tmp_path) and not any(tmp_path.iterdir())
    assert "the warm-up failed" not in caplog.text
    thread = demo.warm_up(reconstructor, tmp_path / "no such photo.jpg")
    thread.join(60)
    assert not thread.is_alive() and "the warm-up failed" in caplog.text


def test_output_store_keeps_the_cache_within_its_budget(tmp_path, monkeypatch):
    store = demo.OutputStore(tmp_path, max_age_s=3600, max_bytes=2500, min_age_s=60)
    now = time.time()
    server_files = []
    for i in range(2):  # the web server's own folders beside the request folders, made first
        server_files.append(tmp_path / f"upload{i}")
        server_files[-1].mkdir()
        (server_files[-1] / "photo.jpg").write_bytes(b"0" * 1000)
    outputs = [store.new_dir() for _ in range(3)]
    for d in outputs:
        (d / "x.bin").write_bytes(b"0" * 1000)
    assert store.size_bytes() == 5000
    monkeypatch.setattr(demo.time, "time", lambda: now + 30)
    store.prune()  # over budget, but everything is younger than min_age_s: it may still be downloading
    assert all(d.exists() for d in server_files + outputs)
    monkeypatch.setattr(demo.time, "time", lambda: now + 100)
    store.prune()  # the oldest entries go until the rest fits in 2500 bytes
    assert [d.exists() for d in server_files + outputs] == [False, False, False, True, True]
    assert store.size_bytes() == 2000
    monkeypatch.setattr(demo.time, "time", lambda: now + 5000)
    store.prune()  # older than max_age_s: all go
    assert store.size_bytes() == 0 and store.outputs.exists()


def test_a_request_folder_outlives_a_short_retention_while_it_is_written(tmp_path, monkeypatch):
    """A request slower than the retention (a busy server) keeps its files until it has written them, and they are
    kept for the retention from then on."""
    store = demo.OutputStore(tmp_path, max_age_s=3, min_age_s=60)
    now = time.time()
    with store.request_dir() as d:
        (d / "face.obj").write_bytes(b"0")
        monkeypatch.setattr(demo.time, "time", lambda: now + 10)  # the request is still writing 10 s on
        store.prune()
        assert d.exists()
        (d / "face.zip").write_bytes(b"0")
    store.prune()
    assert (d / "face.zip").exists()  # its age counts from the end of the writing
    monkeypatch.setattr(demo.time, "time", lambda: now + 14)
    store.prune()
    assert not d.exists()
