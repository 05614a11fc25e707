"""Web demo speed: app start to ready (model loading included), and a 1-megapixel photo from the click to the maps
and mesh being back at the client (gradio_client: upload, processing, download of every output).

    python benchmarks/app_speed.py [--runs 10]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import ROOT, AppServer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--first-after", type=float, default=0.0, metavar="S",
                   help="seconds from ready to the first call (the app warms up in the background meanwhile)")
    args = p.parse_args()
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo_1mp.jpg"
        Image.open(ROOT / "examples" / "astronaut.png").convert("RGB").resize((1000, 1000), Image.LANCZOS).save(
            photo, quality=92)
        starts = []
        for _ in range(3):
            with AppServer() as app:
                starts.append(app.ready_s)
        with AppServer() as app:
            client = Client(app.url, verbose=False, download_files=str(Path(tmp) / "dl"))
            times = []
            time.sleep(args.first_after)
            for _ in range(args.runs + 1):
                t0 = time.perf_counter()
                client.predict(handle_file(str(photo)), 1.0, api_name="/reconstruct")
                times.append((time.perf_counter() - t0) * 1e3)
            first, times = times[0], times[1:]  # the first visitor's, apart: it may include first-call costs
    print(f"app start to ready: median {statistics.median(starts):.1f} s over {len(starts)} starts "
          f"({', '.join(f'{s:.1f}' for s in starts)})")
    print(f"1000x1000 photo, click to maps + mesh + downloads at the client: median {statistics.median(times):.0f} ms, "
          f"max {max(times):.0f} ms over {len(times)} runs after the first, which took {first:.0f} ms "
          f"({args.first_after:g} s after ready)")


if __name__ == "__main__":
    main()
