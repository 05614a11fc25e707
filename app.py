"""facerecon web demo: upload a photo, see the maps, turn the 3D face, download the mesh.

    python app.py            # http://127.0.0.1:7860
    python app.py --share    # a public gradio share link
All work happens in the facerecon package (facerecon.apps.demo); this file only wires widgets to it.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import tempfile
from pathlib import Path

# Gradio's file cache gets a folder of its own, which the app keeps within a size budget (demo.OutputStore)
os.environ.setdefault("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "facerecon-demo"))
import gradio as gr  # noqa: E402

from facerecon import FaceReconError, FaceReconstruction, FaceReconstructor, ImageReadError, NoFaceFound  # noqa: E402
from facerecon.apps import demo  # noqa: E402
from facerecon.preprocess.image_io import probe_image  # noqa: E402
from facerecon.surface.mesh import DETAIL_STRENGTH_MAX, check_detail_strength  # noqa: E402

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
log = logging.getLogger("facerecon")
demo.tune_memory_for_serving()
EXAMPLES = Path(__file__).parent / "examples"
# everything derived from a photo (the upload, its faces' arrays and crops, pictures, downloads) is deleted this
# long after it was made, by a sweep on its own clock (demo.OutputStore)
RETENTION_MINUTES = demo.env_number("FACERECON_RETENTION_MINUTES", 15, minimum=0.01)
MAX_UPLOAD_MB = demo.env_number("FACERECON_MAX_UPLOAD_MB", 25, minimum=0.1)  # a phone photo is 2-12 MB
RETENTION_S = RETENTION_MINUTES * 60
RECONSTRUCTOR = FaceReconstructor.from_pretrained(backend=os.environ.get("FACERECON_BACKEND", "auto"), device="auto")
demo.warm_up(RECONSTRUCTOR, EXAMPLES / "astronaut.png")
STORE = demo.OutputStore(Path(os.environ["GRADIO_TEMP_DIR"]), max_age_s=RETENTION_S,
                         max_bytes=int(demo.env_number("FACERECON_DEMO_CACHE_MB", 1024, minimum=1)) << 20)
STORE.start_sweeper()


def _face_outputs(face: FaceReconstruction, strength: float, out: Path):
    pics = demo.picture_files(face, out, strength)
    try:
        files = demo.downloads(face, out, strength)
    except FaceReconError as e:  # no surface to mesh
        raise user_error(f"{str(e)[0].upper()}{str(e)[1:]}.") from None
    timings = "**Timings:** " + " · ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in face.timings.items())
    return (*(str(pics[k]) for k in ("mask", "depth", "detail", "normals")), str(files["glb"]),
            [str(files[k]) for k in ("glb", "obj_zip", "ply", "stl", "npz")], timings)


def logged(message: str) -> str:
    """A message for the user, also one line in the server's log."""
    log.warning("user error: %s", message)
    return message


def user_error(message: str) -> gr.Error:
    """An error the user can act on: shown on the page, and one line in the server's log (no traceback)."""
    return gr.Error(logged(message), print_exception=False)


def _saved_face(saved: list[dict], index: int) -> FaceReconstruction:
    if not saved:
        raise user_error("Reconstruct a photo first.")
    try:
        return FaceReconstruction.load(saved[index]["arrays"])
    except (FileNotFoundError, IndexError):
        raise user_error(f"These results are gone (they are kept for {RETENTION_MINUTES:g} minutes): "
                         "please reconstruct the photo again.") from None


def checked_strength(strength) -> float:
    """The detail strength as it arrives (the API takes any JSON value), or a plain error naming the range."""
    try:
        return check_detail_strength(strength)
    except ValueError as e:
        raise user_error(str(e).capitalize() + ".") from None


def releasing_memory(handler):
    """Hand the freed heap back to the operating system after every call, failed ones too (demo.release_memory):
    six failed 49-megapixel decodes at once otherwise left the server holding over 1.5 GB until a later success."""
    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        finally:
            demo.release_memory()
    return wrapper


def unreadable(e: ImageReadError) -> str:
    reason = str(e).split(": ", 1)[-1]  # drop the server-side temporary path the message starts with
    return f"This file could not be read as an image: {reason}."


def check_upload(image: dict | None):
    """At upload time, not at Reconstruct: a file that cannot be a photo is said so at once and taken off the page
    (the browser would show a broken preview)."""
    path = image.get("path") if isinstance(image, dict) else None
    if not path:
        return gr.skip()
    try:
        probe_image(path)
    except ImageReadError as e:
        gr.Warning(logged(unreadable(e)))
        return None
    return gr.skip()


def cleared_outputs():
    """What the page shows while a photo is reconstructed, and after it failed: nothing of the previous photo."""
    return [], 0, None, None, None, None, None, None, None, ""


@releasing_memory
def reconstruct(image: dict | None, strength, progress=gr.Progress()):  # noqa: B008 - gradio's idiom
    # preprocess=False: the upload's file path comes straight here, so facerecon's own decoder (EXIF, 16-bit,
    # CMYK, size limits, clear errors) reads it instead of gradio's image preprocessing
    strength = checked_strength(strength)
    path = image.get("path") if isinstance(image, dict) else None
    if not path:
        raise user_error("Please upload a photo, take one with the webcam or paste one first.")
    progress(0.1, desc="Finding faces and predicting depth")
    failure = None
    try:
        result = demo.reconstruct(RECONSTRUCTOR, path)
    except ImageReadError as e:
        # an upload is deleted like every other file (RETENTION_MINUTES after it arrived), also while its request
        # waits in the queue: the user is told that, not that the file is no image
        failure = (f"This photo was deleted: uploads are kept for {RETENTION_MINUTES:g} minutes. Please upload it "
                   "again." if not Path(path).exists() else unreadable(e))
    except NoFaceFound:
        failure = "No face was found in this photo. Try a photo where a face is clearly visible."
    except FaceReconError as e:
        failure = str(e)
    if failure:  # raised here, not in the except clause: the error would keep the failed photo's frames alive
        raise user_error(failure)
    for warning in result.warnings:
        gr.Warning(warning)
    progress(0.6, desc="Building the mesh")
    with STORE.request_dir() as out:  # one folder per request: the saved faces and the first face's outputs
        saved = demo.save_faces(result.faces, out)
        gallery = [(s["crop"], f"Face {i + 1}") for i, s in enumerate(saved)]
        return (saved, 0, gallery, *_face_outputs(result.faces[0], strength, out))


@releasing_memory
def select_face(saved: list[dict], strength: float, evt: gr.SelectData):
    strength = checked_strength(strength)
    face = _saved_face(saved, evt.index)
    with STORE.request_dir() as out:
        return (evt.index, *_face_outputs(face, strength, out))


@releasing_memory
def change_strength(saved: list[dict], index: int, strength: float):
    if not saved:
        return (gr.skip(),) * 7
    strength = checked_strength(strength)
    face = _saved_face(saved, index)
    with STORE.request_dir() as out:
        return _face_outputs(face, strength, out)


with gr.Blocks(title="facerecon: 3D face from one photo",
               delete_cache=(max(1, int(min(RETENTION_S / 4, 300))), max(1, int(RETENTION_S)))) as app:
    gr.Markdown("# facerecon\nDetailed 3D face reconstruction from a single photo: face mask, coarse depth, "
                "fine detail and a mesh you can download.")
    # the session keeps the paths of its saved faces (demo.save_faces), not the arrays
    faces_state, index_state = gr.State([], time_to_live=RETENTION_S), gr.State(0)
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(label="Photo", type="filepath", sources=["upload", "webcam", "clipboard"], height=360)
            strength = gr.Slider(0.0, DETAIL_STRENGTH_MAX, value=1.0, step=0.1,
                                 label="Detail strength (0 = coarse shape only)")
            run = gr.Button("Reconstruct", variant="primary")
            gr.Examples([[str(EXAMPLES / "astronaut.png")], [str(EXAMPLES / "two_faces.jpg")]], inputs=[image])
            # fit_columns=False: a single face keeps its thumbnail's size instead of filling the row (and being
            # cropped to a strip of forehead)
            gallery = gr.Gallery(label="Faces found: click one to show it", columns=4, rows=1, height=150,
                                 object_fit="contain", allow_preview=False, fit_columns=False)
        with gr.Column(scale=2):
            viewer = gr.Model3D(label="3D face (drag to turn, scroll to zoom)", height=420,
                                clear_color=(0.94, 0.94, 0.96, 1.0), camera_position=(-90, 90, None))
            with gr.Row():  # no corner buttons: they covered the labels (the files are in Downloads)
                mask = gr.Image(label="Face mask", height=200, buttons=[])
                depth = gr.Image(label="Depth (red = near)", height=200, buttons=[])
                detail = gr.Image(label="Detail", height=200, buttons=[])
                normals = gr.Image(label="Shaded normals", height=200, buttons=[])
            files = gr.File(label="Downloads: GLB, OBJ (zip), PLY, STL, maps.npz", file_count="multiple")
            timings = gr.Markdown()
    gr.Markdown(f"Running on **{RECONSTRUCTOR.device.upper()}** with the {RECONSTRUCTOR.backend.name} backend. "
                f"Photos and results are deleted after {RETENTION_MINUTES:g} minutes; uploads are limited to "
                f"{MAX_UPLOAD_MB:g} MB.")

    face_outputs = [mask, depth, detail, normals, viewer, files, timings]
    all_outputs = [faces_state, index_state, gallery, *face_outputs]
    image.upload(check_upload, image, image, preprocess=False, api_name=False)
    # the previous photo's results go first, so that an error never stands beside them; the error's badge shows on
    # the 3D view alone, not on every output
    run.click(cleared_outputs, None, all_outputs, queue=False, show_progress="hidden", api_name=False).then(
        reconstruct, [image, strength], all_outputs, api_name="reconstruct", preprocess=False,
        show_progress_on=[viewer])
    gallery.select(select_face, [faces_state, strength], [index_state, *face_outputs], api_name=False)
    strength.release(change_strength, [faces_state, index_state, strength], face_outputs, api_name=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="facerecon web demo")
    parser.add_argument("--share", action="store_true", help="create a public gradio share link")
    parser.add_argument("--host", default=None, help="default 127.0.0.1 (or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None, help="default 7860 (or $GRADIO_SERVER_PORT)")
    args = parser.parse_args()
    app.queue(default_concurrency_limit=2, max_size=100).launch(server_name=args.host, server_port=args.port,
                                                                share=args.share,
                                                                max_file_size=int(MAX_UPLOAD_MB * gr.FileSize.MB))
