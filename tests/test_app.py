"""The Gradio app in-process, called through gradio_client on real images (examples/ are public domain / CC0)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from .conftest import EXAMPLES, ROOT

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(monkeypatch_module):
    monkeypatch_module.setenv("FACERECON_MODEL", str(ROOT / "weights"))
    import importlib
    import sys

    sys.path.insert(0, str(ROOT))
    app_module = importlib.import_module("app")
    app_module.app.queue(default_concurrency_limit=2)
    _, url, _ = app_module.app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None,
                                      quiet=True)
    yield gradio_client.Client(url, verbose=False)
    app_module.app.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def call(client, path, strength=1.0):
    return client.predict(gradio_client.handle_file(str(path)), strength, api_name="/reconstruct")


def test_one_face_gives_maps_viewer_mesh_and_downloads(client):
    # session state (the faces, the selected index) stays on the server; the API returns the visible outputs
    gallery, mask, depth, detail, normals, glb, files, timings = call(client, EXAMPLES / "astronaut.png")
    assert len(gallery) == 1
    for pic in (mask, depth, detail, normals):
        assert Image.open(pic).size == (256, 256)
    assert glb.endswith(".glb") and open(glb, "rb").read(4) == b"glTF"
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert names == ["face.glb", "face.ply", "face.stl", "face_obj.zip", "maps.npz"]
    assert "network" in timings


def test_two_faces(client):
    assert len(call(client, EXAMPLES / "two_faces.jpg")[0]) == 2


def test_detail_strength_changes_the_mesh(client):
    flat = np.load([f for f in call(client, EXAMPLES / "astronaut.png", 0.0)[6] if f.endswith(".npz")][0])
    glb0 = call(client, EXAMPLES / "astronaut.png", 0.0)[5]
    glb2 = call(client, EXAMPLES / "astronaut.png", 2.0)[5]
    assert open(glb0, "rb").read() != open(glb2, "rb").read()
    assert flat["depth"].shape == (256, 256)


def test_no_face_and_broken_files_get_clear_errors(client, tmp_path):
    with pytest.raises(gradio_client.exceptions.AppError, match="No face was found"):
        call(client, EXAMPLES / "cat_no_face.png")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(gradio_client.exceptions.AppError, match="could not be read|not an image|image"):
        call(client, broken)
    # the app still answers after the errors
    assert len(call(client, EXAMPLES / "astronaut.png")[0]) == 1
