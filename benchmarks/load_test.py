"""Load test of the web demo: N concurrent gradio_client users making R requests each, then more requests up to a
total, reporting failures, latency percentiles, the app's resident memory and its temporary files.

    python benchmarks/load_test.py [--users 50] [--requests-each 4] [--total 500]
Requests alternate between a one-face photo, a two-face photo and a photo without a face; "no face" answers are
expected refusals, not failures. A failure is any other error, or no answer.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import ROOT, AppServer, rss_mb  # noqa: E402

PHOTOS = [ROOT / "examples" / "astronaut.png", ROOT / "examples" / "two_faces.jpg",
          ROOT / "examples" / "astronaut.png", ROOT / "examples" / "cat_no_face.png"]


def folder_mb(path: Path) -> float:
    total = 0
    for f in path.rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except FileNotFoundError:  # pruned while counting
            pass
    return total / 2**20


class Sampler(threading.Thread):
    """Every `every` seconds: the app's resident memory and the size of its temporary files; keeps the peaks."""

    def __init__(self, pid: int, folder: Path, every: float = 2.0):
        super().__init__(daemon=True)
        self.pid, self.folder, self.every = pid, folder, every
        self.peak_rss = self.peak_tmp = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.peak_rss = max(self.peak_rss, rss_mb(self.pid))
            self.peak_tmp = max(self.peak_tmp, folder_mb(self.folder))


def run_users(url: str, users: int, each: int, download_dir: str) -> tuple[list[float], list[str], int]:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    latencies, failures, refusals = [], [], [0]
    lock = threading.Lock()

    def user(k: int) -> None:
        try:
            client = Client(url, verbose=False, download_files=download_dir)
        except Exception as e:  # noqa: BLE001 - a user who cannot connect is a failure
            with lock:
                failures.extend([f"connect: {e}"] * each)
            return
        for i in range(each):
            photo = PHOTOS[(k + i) % len(PHOTOS)]
            t0 = time.perf_counter()
            try:
                client.predict(handle_file(str(photo)), 1.0, api_name="/reconstruct")
                with lock:
                    latencies.append(time.perf_counter() - t0)
            except AppError as e:
                with lock:
                    if "No face" in str(e):
                        refusals[0] += 1
                        latencies.append(time.perf_counter() - t0)
                    else:
                        failures.append(str(e))
            except Exception as e:  # noqa: BLE001
                with lock:
                    failures.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures, refusals[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--requests-each", type=int, default=4)
    p.add_argument("--total", type=int, default=500)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app_tmp = Path(tmp) / "app"  # the app's Gradio cache, uploads and results: all its temporary files
        downloads = str(Path(tmp) / "downloads")
        os.environ["GRADIO_TEMP_DIR"] = str(app_tmp)
        with AppServer() as app:
            run_users(app.url, 2, 5, downloads)  # warm-up: 10 requests
            rss_before, tmp_before = rss_mb(app.pid), folder_mb(app_tmp)
            sampler = Sampler(app.pid, app_tmp)
            sampler.start()
            t0 = time.perf_counter()
            lat, fails, refused = run_users(app.url, args.users, args.requests_each, downloads)
            burst_s = time.perf_counter() - t0
            done = args.users * args.requests_each
            rss_burst, tmp_burst = rss_mb(app.pid), folder_mb(app_tmp)
            rest = max(0, args.total - done)
            lat2, fails2, refused2 = run_users(app.url, 10, rest // 10, downloads) if rest else ([], [], 0)
            sampler.stop.set()
            rss_after, tmp_after = rss_mb(app.pid), folder_mb(app_tmp)
    q = statistics.quantiles(lat, n=20)
    print("| measure | value |\n|---|---|")
    print(f"| {args.users} users x {args.requests_each} requests, at once | {done} requests in {burst_s:.0f} s |")
    print(f"| failures (burst) | {len(fails)} |")
    print(f"| expected 'no face' refusals (burst) | {refused} |")
    print(f"| latency p50 / p95 (burst, queueing included) | {statistics.median(lat):.2f} s / {q[18]:.2f} s |")
    print(f"| requests after warm-up, in all | {done + len(lat2) + len(fails2)} |")
    print(f"| failures (all) | {len(fails) + len(fails2)} |")
    print(f"| resident memory after warm-up / after the burst / at the end | {rss_before:.0f} / {rss_burst:.0f} / "
          f"{rss_after:.0f} MB ({100 * (rss_after / rss_before - 1):+.1f}%) |")
    print(f"| resident memory, peak | {sampler.peak_rss:.0f} MB |")
    print(f"| temporary files after warm-up / after the burst / at the end / peak | {tmp_before:.0f} / "
          f"{tmp_burst:.0f} / {tmp_after:.0f} / {sampler.peak_tmp:.0f} MB |")
    for f in (fails + fails2)[:5]:
        print(f"failure: {f}")


if __name__ == "__main__":
    main()
