import os
import subprocess
import sys

import numpy as np

from .conftest import EXAMPLES, ROOT, WEIGHTS


def run_cli(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "facerecon", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, **(env or {})})


def test_predict_writes_maps_and_meshes_and_reports_failures(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    res = run_cli("predict", str(EXAMPLES / "astronaut.png"), str(bad), str(EXAMPLES / "cat_no_face.png"),
                  "--out", str(out), "--model", str(WEIGHTS), "--formats", "glb,obj,ply,stl")
    assert res.returncode == 1, res.stderr  # some inputs failed...
    face_dir = out / "astronaut" / "face_0"  # ...but the good one was processed
    for name in ("mask.png", "depth.png", "detail.png", "maps.npz", "face.glb", "face.obj", "face.mtl", "face.ply",
                 "face.stl"):
        assert (face_dir / name).is_file(), name
    assert "astronaut.png face 0:" in res.stdout and res.stdout.count("\n") == 1
    assert "broken.png" in res.stderr and "cat_no_face.png: no face" in res.stderr
    assert "Traceback" not in res.stderr
    npz = np.load(face_dir / "maps.npz")
    assert npz["crop_affine"].shape == (2, 3) and npz["crop_rgb"].shape == (256, 256, 3)


def test_bad_arguments_give_a_message_not_a_traceback(tmp_path):
    res = run_cli("predict", str(EXAMPLES / "astronaut.png"), "--out", str(tmp_path), "--formats", "fbx",
                  "--model", str(WEIGHTS))
    assert res.returncode != 0 and "fbx" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("predict", str(EXAMPLES / "astronaut.png"), "--out", str(tmp_path), "--model", str(tmp_path / "x"))
    assert res.returncode == 2 and "not a model folder" in res.stderr
    res = run_cli("evaluate", "--out", str(tmp_path), "--coarse-smoothing", "-1")
    assert res.returncode == 2 and "--coarse-smoothing must be >= 0" in res.stderr and "Traceback" not in res.stderr


def test_quiet_by_default_and_verbose_on_request(tmp_path):
    args = ("predict", str(EXAMPLES / "cat_no_face.png"), str(EXAMPLES / "astronaut.png"), "--out", str(tmp_path),
            "--formats", "glb")
    quiet = run_cli(*args, env={"HF_HUB_OFFLINE": "1"})
    # one line per failed input and nothing else: no start-up lines, no hub fallback
    assert quiet.stderr.splitlines() == [f"{EXAMPLES / 'cat_no_face.png'}: no face was found in the image"]
    loud = run_cli(*args, "--verbose", env={"HF_HUB_OFFLINE": "1"})
    assert "backend openvino-int8 on cpu" in loud.stderr and "bundled weights" in loud.stderr  # the default on a CPU


def test_outputs_stay_inside_out_and_path_errors_are_one_line(tmp_path):
    odd = tmp_path / "in" / "...jpg"
    odd.parent.mkdir()
    odd.write_bytes((EXAMPLES / "astronaut.png").read_bytes())
    out = tmp_path / "in" / "out"
    res = run_cli("predict", str(odd), str(tmp_path), "--out", str(out), "--formats", "stl")
    assert res.returncode == 1 and (out / "image" / "face_0" / "face.stl").is_file()
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["...jpg", "out"]  # nothing beside --out
    assert res.stderr.strip() == f"{tmp_path}: is a folder, not an image file"
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    res = run_cli("predict", str(odd), "--out", str(not_a_folder))
    assert res.returncode == 2 and "is a file; give a folder" in res.stderr and "Traceback" not in res.stderr


def test_values_are_checked_where_they_enter(tmp_path):
    for flag, value, words in (("--detail-strength", "nan", "from 0 to 5, not 'nan'"),
                               ("--detail-strength", "1e9", "from 0 to 5, not '1e9'"),
                               ("--decimate", "-5", ">= 100, not -5"), ("--decimate", "many", "'many'")):
        res = subprocess.run([sys.executable, "-m", "facerecon", "predict", str(EXAMPLES / "astronaut.png"),
                              "--out", str(tmp_path), flag, value], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not any(tmp_path.iterdir())


def test_a_file_system_error_is_one_line_and_the_other_inputs_go_on(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "astronaut").write_text("a file where the results' folder should go")
    two = tmp_path / "two_faces.jpg"
    two.write_bytes((EXAMPLES / "two_faces.jpg").read_bytes())
    res = run_cli("predict", str(EXAMPLES / "astronaut.png"), str(two), "--out", str(out), "--formats", "glb")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.splitlines() == [f"{EXAMPLES / 'astronaut.png'} face 0: could not write "
                                       f"{out / 'astronaut' / 'face_0'}: Not a directory"]
    assert (out / "two_faces" / "face_1" / "face.glb").is_file()  # the next input was still done


def test_warnings_and_failures_are_one_line_per_face_on_stderr(tmp_path):
    import cv2

    res = run_cli("predict", str(EXAMPLES / "two_faces.jpg"), "--out", str(tmp_path / "out"), "--formats", "glb",
                  env={"FACERECON_MAX_FACES": "1"})
    assert res.returncode == 0 and res.stdout.count("\n") == 1
    assert res.stderr.splitlines() == [f"{EXAMPLES / 'two_faces.jpg'} face 0: warning: 1 more face in the photo was "
                                       "left out (at most 1 face a photo: FACERECON_MAX_FACES)."]
    blurred = tmp_path / "blurred.png"  # found, but (almost) nothing of its crop is recognised as face: no mesh
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(EXAMPLES / "astronaut.png")), (0, 0), 3))
    res = run_cli("predict", str(blurred), "--out", str(tmp_path / "out"), "--formats", "glb")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.splitlines() == [f"{blurred} face 0: too little of the face's crop was recognised as face "
                                       "(under 5%), so there is no surface to mesh (the photo may be blurred or the "
                                       "face covered)"]


def test_the_default_cpu_path_imports_no_torch_onnx_trimesh_mediapipe_or_open3d(tmp_path):
    """Start-up (issue 27): the int8 network runs in OpenVINO and the face models too; torch (about 1 s to import),
    the onnx package (0.7 s), trimesh (0.4 s, OBJ, PLY and STL only), mediapipe (0.25 s; only its model files are
    read) with matplotlib, which its drawing helpers import, and open3d (0.65 s; decimation and ray casting only)
    stay unimported for a GLB."""
    code = ("import sys\nfrom facerecon.apps.cli import main\n"
            f"main(['predict', {str(EXAMPLES / 'astronaut.png')!r}, '--out', {str(tmp_path)!r}, '--formats', 'glb'])\n"
            "print(*(name in sys.modules for name in ('torch', 'onnx', 'trimesh', 'mediapipe', 'matplotlib', "
            "'open3d')))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "False False False False False False"
    assert (tmp_path / "astronaut" / "face_0" / "face.glb").is_file()
