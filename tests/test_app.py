"""The Gradio app in-process, called through gradio_client on real images (examples/ are public domain / CC0)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from .conftest import EXAMPLES, ROOT, WEIGHTS, AppServer
from .test_fuzz import image_bytes

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def app_module(monkeypatch_module):
    monkeypatch_module.setenv("FACERECON_MODEL", str(WEIGHTS))
    import importlib
    import sys

    sys.path.insert(0, str(ROOT))
    return importlib.import_module("app")


@pytest.fixture(scope="module")
def client(app_module):
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
    blurred = tmp_path / "blurred.png"  # a face is found, but (almost) nothing of its crop is recognised as face
    Image.open(EXAMPLES / "astronaut.png").convert("RGB").filter(ImageFilter.GaussianBlur(3)).save(blurred)
    with pytest.raises(gradio_client.exceptions.AppError, match="no surface to mesh"):
        call(client, blurred)
    # the app still answers after the errors
    assert len(call(client, EXAMPLES / "astronaut.png")[0]) == 1


def test_sessions_keep_paths_and_gone_results_are_explained(app_module):
    import gradio as gr

    saved = app_module.reconstruct({"path": str(EXAMPLES / "two_faces.jpg")}, 1.0, progress=lambda *a, **k: None)[0]
    assert len(saved) == 2 and all(isinstance(v, str) for face in saved for v in face.values())  # no arrays
    mask, depth, detail, normals, glb, files, timings = app_module.change_strength(saved, 1, 2.0)
    assert Image.open(mask).size == (256, 256) and open(glb, "rb").read(4) == b"glTF"
    Path(saved[1]["arrays"]).unlink()  # as the cache budget or the 15 minutes would
    with pytest.raises(gr.Error, match="reconstruct the photo again"):
        app_module.change_strength(saved, 1, 2.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(data=st.one_of(image_bytes(), st.binary(max_size=2048)), suffix=st.sampled_from([".jpg", ".png", ".gif", ""]))
def test_any_upload_gives_a_result_or_a_plain_message(app_module, tmp_path_factory, data, suffix):
    """The app's own input path (what a browser upload reaches) under the fuzzer of test_fuzz: a result, or a
    gr.Error whose message does not leak the server's file paths; never another exception."""
    import gradio as gr

    path = tmp_path_factory.mktemp("upload") / f"upload{suffix}"
    path.write_bytes(data)
    try:
        saved = app_module.reconstruct({"path": str(path)}, 1.0, progress=lambda *a, **k: None)[0]
    except gr.Error as e:
        assert e.message and str(path.parent) not in e.message
        return
    assert saved and all(Path(face["arrays"]).exists() for face in saved)


@pytest.mark.parametrize("strength", [1e9, -5, "abc", None])  # NaN is not JSON: the client refuses it
def test_a_detail_strength_outside_its_range_gets_a_plain_message(client, strength):
    with pytest.raises(gradio_client.exceptions.AppError, match="Detail strength must be a number from 0 to 5"):
        call(client, EXAMPLES / "astronaut.png", strength)


def upload(url: str, name: str, data: bytes) -> str:
    """POST a file to the server's upload route, as a browser does before it calls the app; its server path."""
    boundary = "facerecon-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)[0]


def test_retention_deletes_every_file_of_a_request_on_an_idle_server_and_big_uploads_are_refused(tmp_path):
    """FACERECON_RETENTION_MINUTES of 6 s: after one request and no other, nothing it left stays on the server; an
    upload that was deleted before its request ran is said to be so; an upload over FACERECON_MAX_UPLOAD_MB is
    refused before it is stored; a user's error is one line in the log."""
    cache = tmp_path / "cache"
    photo = tmp_path / "photo-under-test.png"
    photo.write_bytes((EXAMPLES / "astronaut.png").read_bytes())
    env = {"GRADIO_TEMP_DIR": str(cache), "FACERECON_RETENTION_MINUTES": "0.1", "FACERECON_MAX_UPLOAD_MB": "1",
           "FACERECON_MODEL": str(WEIGHTS)}
    with AppServer(env=env, log=tmp_path / "server.log") as server:
        client = gradio_client.Client(server.url, verbose=False)
        with pytest.raises(gradio_client.exceptions.AppError, match="No face"):
            call(client, EXAMPLES / "cat_no_face.png")
        call(client, photo)
        log = (tmp_path / "server.log").read_text()  # a user's error is one line there, not a traceback
        assert "Traceback" not in log and len([line for line in log.splitlines() if "No face" in line]) == 1
        made = [p for p in cache.rglob("*") if p.is_file()]
        assert any(p.name == photo.name for p in made) and any(p.suffix == ".glb" for p in made)
        # uploaded, then its request comes after the retention (a long queue, a user who waited)
        late = Path(upload(server.url, "late.png", photo.read_bytes()))
        deadline = time.time() + 30  # retention 6 s, a sweep every 1.5 s
        while time.time() < deadline and (late.exists() or any(p.exists() for p in made)):
            time.sleep(0.5)
        assert [p for p in made if p.exists()] == [] and not late.exists()
        # through the HTTP API, as gradio_client would upload the path again
        request = urllib.request.Request(server.url + "gradio_api/call/reconstruct", method="POST",
                                         data=json.dumps({"data": [{"path": str(late), "meta": {
                                             "_type": "gradio.FileData"}}, 1.0]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            event = json.load(response)["event_id"]
        with urllib.request.urlopen(f"{server.url}gradio_api/call/reconstruct/{event}", timeout=120) as response:
            answer = response.read().decode()
        assert "event: error" in answer and "This photo was deleted: uploads are kept for 0.1 minutes." in answer
        with pytest.raises(urllib.error.HTTPError) as refused:
            upload(server.url, "big.jpg", b"x" * (2 << 20))
        assert refused.value.code == 413 and not [p for p in cache.rglob("*") if p.name == "big.jpg"]
