"""Load test of the web demo: N concurrent gradio_client users making R requests each, then more requests up to a
total, reporting failures, latency percentiles, the app's resident memory and its temporary files.

    python benchmarks/load_test.py [--users 50] [--requests-each 4] [--total 500]
The same users first make R requests each all at once (the burst), then go on in rounds of 100 requests up to the
total; memory is read after a warm-up round (one request per user) and after each round, with the app idle for 2 s.
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
    for folder, _, files in os.walk(path):  # os.walk skips folders the app prunes while it counts
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
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


def connect(url: str, users: int, download_dir: str) -> list:
    from gradio_client import Client

    return [Client(url, verbose=False, download_files=download_dir) for _ in range(users)]


def run_users(clients: list, each: int, offset: int = 0) -> tuple[list[float], list[str], int]:
    """Every client makes `each` requests in a row, all clients at once."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    latencies, failures, refusals = [], [], [0]
    lock = threading.Lock()

    def user(k: int) -> None:
        for i in range(each):
            photo = PHOTOS[(k + i + offset) % len(PHOTOS)]
            t0 = time.perf_counter()
            try:
                clients[k].predict(handle_file(str(photo)), 1.0, api_name="/reconstruct")
                with lock:
                    latencies.append(time.perf_counter() - t0)
            except AppError as e:
                with lock:
                    if "No face" in str(e):
                        refusals[0] += 1
                        latencies.append(time.perf_counter() - t0)
                    else:
                        failures.append(str(e))
            except Exception as e:  # noqa: BLE001 - any other outcome is a failure, reported with its type
                with lock:
                    failures.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=user, args=(k,)) for k in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures, refusals[0]


def settled_rss(pid: int) -> float:
    """Resident memory once the app has been idle for 2 s (not in the middle of a request's temporaries)."""
    time.sleep(2)
    return rss_mb(pid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--requests-each", type=int, default=4)
    p.add_argument("--total", type=int, default=500)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app_tmp = Path(tmp) / "app"  # the app's Gradio cache, uploads and results: all its temporary files
        os.environ["GRADIO_TEMP_DIR"] = str(app_tmp)
        with AppServer() as app:
            clients = connect(app.url, args.users, str(Path(tmp) / "downloads"))
            # warm-up: one request per user, all at once, so thread pools and allocator arenas reach working size
            run_users(clients, 1)
            rss_before, tmp_before = settled_rss(app.pid), folder_mb(app_tmp)
            sampler = Sampler(app.pid, app_tmp)
            sampler.start()
            t0 = time.perf_counter()
            lat, fails, refused = run_users(clients, args.requests_each)
            burst_s = time.perf_counter() - t0
            done = len(lat) + len(fails)
            tmp_burst = folder_mb(app_tmp)
            curve = [(done, settled_rss(app.pid))]
            all_lat, all_fails = list(lat), list(fails)
            while done < args.total:  # the same users go on, 100 requests per round, memory after each round
                each = max(1, min(100, args.total - done) // len(clients))
                more_lat, more_fails, _ = run_users(clients, each, offset=done)
                all_lat, all_fails = all_lat + more_lat, all_fails + more_fails
                done += len(more_lat) + len(more_fails)
                curve.append((done, settled_rss(app.pid)))
            sampler.stop.set()
            rss_after, tmp_after = curve[-1][1], folder_mb(app_tmp)
    q, q_all = statistics.quantiles(lat, n=20), statistics.quantiles(all_lat, n=20)
    print("| measure | value |\n|---|---|")
    print(f"| {args.users} users x {args.requests_each} requests, at once | {args.users * args.requests_each} requests "
          f"in {burst_s:.0f} s |")
    print(f"| expected 'no face' refusals (burst) | {refused} |")
    print(f"| latency p50 / p95, burst (queueing included) | {statistics.median(lat):.2f} s / {q[18]:.2f} s |")
    print(f"| latency p50 / p95, all requests | {statistics.median(all_lat):.2f} s / {q_all[18]:.2f} s |")
    print(f"| requests after warm-up, in all | {done} |")
    print(f"| failures (burst / all) | {len(fails)} / {len(all_fails)} |")
    print(f"| resident memory after warm-up -> after all requests | {rss_before:.0f} -> {rss_after:.0f} MB "
          f"({100 * (rss_after / rss_before - 1):+.1f}%) |")
    print("| resident memory after N requests (idle 2 s) | " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in curve) + " |")
    print(f"| resident memory, peak (sampled every 2 s) | {sampler.peak_rss:.0f} MB |")
    print(f"| temporary files after warm-up / after the burst / at the end / peak | {tmp_before:.0f} / "
          f"{tmp_burst:.0f} / {tmp_after:.0f} / {sampler.peak_tmp:.0f} MB |")
    for f in all_fails[:5]:
        print(f"failure: {f}")


if __name__ == "__main__":
    main()
