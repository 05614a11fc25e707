import subprocess
import sys

import numpy as np

from .conftest import EXAMPLES, ROOT, WEIGHTS


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "facerecon", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


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
