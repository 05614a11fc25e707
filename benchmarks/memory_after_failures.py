"""Server memory around failed requests: the web demo's resident memory idle, at the peak of N concurrent uploads of
large photos without a face (each decodes to `--megapixels`), and a few seconds after they all failed.

    python benchmarks/memory_after_failures.py [--uploads 6] [--megapixels 49]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import ROOT, AppServer, rss_mb  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--uploads", type=int, default=6)
    p.add_argument("--megapixels", type=float, default=49)
    args = p.parse_args()
    import gradio_client

    side = int((args.megapixels * 1e6) ** 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "large-grey.png"  # a small file that decodes to side x side pixels, no face in it
        Image.fromarray(np.full((side, side, 3), 128, np.uint8)).save(photo)
        size = photo.stat().st_size
        with AppServer() as server:
            client = gradio_client.Client(server.url, verbose=False)
            client.predict(gradio_client.handle_file(str(ROOT / "examples" / "astronaut.png")), 1.0,
                           api_name="/reconstruct")  # warm: the model and the detector have run once
            time.sleep(3)
            idle = rss_mb(server.pid)
            peak, failures = idle, []

            def upload() -> None:
                try:
                    gradio_client.Client(server.url, verbose=False).predict(
                        gradio_client.handle_file(str(photo)), 1.0, api_name="/reconstruct")
                except Exception as e:  # noqa: BLE001 - every request is expected to fail: no face
                    failures.append(type(e).__name__)

            threads = [threading.Thread(target=upload) for _ in range(args.uploads)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                peak = max(peak, rss_mb(server.pid))
                time.sleep(0.05)
            time.sleep(3)
            after = rss_mb(server.pid)
    print(f"{args.uploads} concurrent uploads of a {side}x{side} PNG ({size} bytes)"
          f" without a face: {len(failures)} failed as expected")
    print("| idle MB | peak MB | 3 s after the failures MB | after / idle |\n|---|---|---|---|")
    print(f"| {idle:.0f} | {peak:.0f} | {after:.0f} | {after / idle:.2f} |")


if __name__ == "__main__":
    main()
