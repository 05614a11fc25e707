"""What the web demo does, as library calls: reconstruct with plain-language checks, pictures and downloads.

app.py only wires these to widgets.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..predictor import FaceReconstructor
from ..preprocess.image_io import load_image
from ..result import FaceReconstruction
from ..surface import visualize
from ..surface.export import export_face

log = logging.getLogger("facerecon")


@lru_cache(maxsize=1)
def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): nothing to tune
        return None


def tune_memory_for_serving(arenas: int = 2) -> None:
    """Tune glibc's malloc for a long-running server (mallopt). A web server runs requests on dozens of threads;
    each thread's arena keeps the freed temporaries of the largest request it ran, so resident memory climbs with
    concurrency long after a burst is over: cap the arenas (measured: docs/reliability.md)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, arenas)  # -8 = M_ARENA_MAX


def release_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc's malloc_trim) after a request."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@dataclass
class Reconstruction:
    faces: list[FaceReconstruction]
    warnings: list[str] = field(default_factory=list)


def reconstruct(rec: FaceReconstructor, image) -> Reconstruction:
    """Run the reconstructor; its faces' warnings (checks.py) for the page: the photo's once, each face's with the
    face named. Errors (ImageReadError, NoFaceFound) propagate with their messages."""
    t0 = time.perf_counter()
    rgb = load_image(image)
    decode_ms = (time.perf_counter() - t0) * 1e3
    faces = rec.reconstruct(rgb)
    warnings = [w for w in faces[0].warnings if not w.startswith("The face")]  # about the photo: every face has them
    for i, f in enumerate(faces):
        f.timings["decode"] = decode_ms
        name = f"Face {i + 1}" if len(faces) > 1 else "The face"
        warnings += [w.replace("The face", name, 1) for w in f.warnings if w.startswith("The face")]
    return Reconstruction(faces, warnings)


def pictures(face: FaceReconstruction, detail_strength: float = 1.0) -> dict[str, np.ndarray]:
    return {"mask": visualize.mask_overlay(face), "depth": visualize.depth_colour(face, detail_strength),
            "detail": visualize.detail_picture(face), "normals": visualize.shaded_normals(face, detail_strength)}


def picture_files(face: FaceReconstruction, out_dir: Path, detail_strength: float = 1.0) -> dict[str, Path]:
    """pictures() as PNG files in out_dir. A web server can hand out files of its own folder as they are; given
    arrays, Gradio encodes them into a cache path named by their content and rewrites that file on every identical
    result, so a second user of the same photo could download a half-written picture."""
    out = {}
    for name, rgb in pictures(face, detail_strength).items():
        out[name] = Path(out_dir) / f"{name}.png"
        cv2.imwrite(str(out[name]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return out


def save_faces(faces: list[FaceReconstruction], out_dir: Path) -> list[dict[str, str]]:
    """Each face's arrays (face_<i>.npz, FaceReconstruction.load) and crop picture (face_<i>.png): a web session
    keeps these paths instead of the arrays, so the server's memory does not grow with its sessions."""
    saved = []
    for i, face in enumerate(faces):
        crop = Path(out_dir) / f"face_{i}.png"
        cv2.imwrite(str(crop), cv2.cvtColor(face.crop_rgb, cv2.COLOR_RGB2BGR))
        saved.append({"arrays": str(face.save(Path(out_dir) / f"face_{i}.npz", compress=False)), "crop": str(crop)})
    return saved


def downloads(face: FaceReconstruction, out_dir: Path, detail_strength: float = 1.0) -> dict[str, Path]:
    """face.glb, face_obj.zip (OBJ + MTL + its texture), face.ply, face.stl and maps.npz, in out_dir/files."""
    t0 = time.perf_counter()
    paths = export_face(face, Path(out_dir) / "files", detail_strength=detail_strength)
    obj_zip = paths["obj"].with_name("face_obj.zip")
    # the fastest deflate: 1.2 MB against 1.0 at zlib's default level, in 45 ms instead of 170 (docs/speed.md)
    with zipfile.ZipFile(obj_zip, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for key in ("obj", "mtl", "obj_texture"):
            z.write(paths[key], paths[key].name)
            paths[key].unlink()  # only the zip is offered: no second copy on disk
    face.timings["mesh_and_downloads"] = (time.perf_counter() - t0) * 1e3
    return {"glb": paths["glb"], "obj_zip": obj_zip, "ply": paths["ply"], "stl": paths["stl"], "npz": paths["maps"]}


def warm_up(rec: FaceReconstructor, photo: Path) -> threading.Thread:
    """Reconstruct `photo` and write its pictures and downloads once, into a folder deleted at once, on a thread of
    its own: what only a first call costs (the batch-2 network loaded from OpenVINO's cache, trimesh imported for
    PLY and STL, first allocations) is then not the first visitor's wait (benchmarks/app_speed.py). A failure is
    logged: the app serves without it."""
    def run() -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="facerecon-warm-up-") as tmp:
                face = reconstruct(rec, photo).faces[0]
                picture_files(face, Path(tmp))
                downloads(face, Path(tmp))
        except Exception:  # noqa: BLE001 - whatever it was, the app still serves
            log.exception("the warm-up failed")

    thread = threading.Thread(target=run, name="facerecon-warm-up", daemon=True)
    thread.start()
    return thread


def env_number(name: str, default: float, minimum: float) -> float:
    """A number from the environment variable `name` (default when unset); ValueError naming it otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also False for NaN
        raise ValueError(f"{name}={text!r}: must be a number >= {minimum:g}")
    return value


class OutputStore:
    """Per-request folders inside a web server's file cache, and a budget for that whole cache.

    Files the server made itself (uploads, its copies) live beside the request folders under `root`; every entry
    (a request folder, or one of the server's folders) goes when it is older than max_age_s, and then the oldest go
    until all of them fit in max_bytes. Entries younger than min_age_s always stay: their files may still be on
    their way to a browser. A request folder's age counts from when its request finished writing it (request_dir),
    or, after a restart, from its creation, written into its name; a server entry's from the newest change of a file
    in it (its folder's own time changes when the server deletes files in it, which would make an old folder look
    new). start_sweeper prunes on its own clock, so an idle server deletes on time too."""

    def __init__(self, root: Path, max_age_s: float = 900, max_bytes: int = 1 << 30, min_age_s: float = 60):
        self.root, self.max_age_s, self.max_bytes, self.min_age_s = Path(root), max_age_s, max_bytes, min_age_s
        self.outputs = self.root / "facerecon"
        self.outputs.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        # request folders being written (no prune touches them), and when each finished being written
        self._writing: set[Path] = set()
        self._written: dict[Path, float] = {}

    def new_dir(self) -> Path:
        self.prune()
        d = self.outputs / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        d.mkdir()
        return d

    @contextmanager
    def request_dir(self) -> Iterator[Path]:
        """A new request folder that no prune removes while the block writes it, and whose age counts from the
        block's end: on a busy server a request that took longer than a short retention lost its files to the
        sweeper half-way through writing them."""
        d = self.new_dir()
        self._writing.add(d)
        try:
            yield d
        finally:
            self._written[d] = time.time()
            self._writing.discard(d)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(time its age counts from, bytes, path) of every prunable entry, oldest first."""
        found = []
        for entry in [p for p in self.root.iterdir() if p != self.outputs] + list(self.outputs.iterdir()):
            try:
                files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
                stats = [f.stat() for f in files]
                born = (self._written.get(entry) or _created(entry)) if entry.parent == self.outputs else None
                since = born or max([st.st_mtime for st in stats] or [entry.stat().st_mtime])
            except FileNotFoundError:  # removed meanwhile by the server's own cleaning
                continue
            found.append((since, sum(st.st_size for st in stats), entry))
        return sorted(found)

    def prune(self) -> None:
        entries, now = self.entries(), time.time()
        live = {path for _, _, path in entries}
        # whoever deleted them; a copy of the keys, as a request's thread may add one while the sweeper's runs this
        for gone in [path for path in list(self._written) if path not in live]:
            self._written.pop(gone, None)
        total = sum(size for _, size, _ in entries)
        for since, size, path in entries:
            if path in self._writing:
                continue
            age = now - since
            if age > self.max_age_s or (total > self.max_bytes and age > self.min_age_s):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                total -= size

    def start_sweeper(self, interval_s: float | None = None) -> threading.Thread:
        """Prune every interval_s (default a quarter of max_age_s, 1 to 60 s) on a daemon thread, requests or not."""
        interval = interval_s or min(max(self.max_age_s / 4, 1.0), 60.0)

        def sweep() -> None:
            while not self._stop.wait(interval):
                try:
                    self.prune()
                except OSError as e:  # a sweep that fails is retried at the next one
                    log.warning("facerecon: pruning %s failed: %s", self.root, e)

        thread = threading.Thread(target=sweep, name="facerecon-sweeper", daemon=True)
        thread.start()
        return thread

    def stop_sweeper(self) -> None:
        self._stop.set()

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())


def _created(folder: Path) -> float | None:
    """The creation time a request folder's name starts with (OutputStore.new_dir), None for another name."""
    try:
        return int(folder.name.split("-", 1)[0]) / 1e9
    except ValueError:
        return None
