"""How long a post of big images holds everyone else's requests.

    python -m bench.image_posts [--posts 5] [--port 18960]

Starts ``livestudio serve`` on a new SQLite file, then sends posts of three 7.2 MB PNG
images (noise: they do not compress; ~30 MB of body, the most the server takes) while a
probe asks ``/health`` every 2 ms on another connection. It prints each post's time and
the probe's p50, p99 and longest wait: the longest is how long the big posts held the
event loop (what a TUI, a stream or a small post waits behind them).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import httpx
from PIL import Image

SIDE = 1550
"""Pixels per side: an uncompressed RGB PNG of ~7.2 MB, under the 7.5 MB image limit."""


def _noise_png() -> bytes:
    image = Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    return out.getvalue()


def _cli(*args: str, db: str, stdin: bytes | None = None) -> str:
    env = {**os.environ, "LIVESTUDIO_PASSWORD_MEMORY_KIB": "1024"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--db", db],
        input=stdin,
        capture_output=True,
        env=env,
        check=True,
    )
    return done.stdout.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--port", type=int, default=18960)
    args = parser.parse_args()
    db = os.path.join(tempfile.mkdtemp(prefix="livestudio-bench-"), "images.db")
    _cli("user", "add", "bench", "--password-stdin", db=db, stdin=b"bench-password\n")
    token = next(w for w in _cli("token", "create", "bench", db=db).split() if w.startswith("lst_"))
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--db", db, "--port", str(args.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/health")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        images = [_noise_png() for _ in range(3)]
        run = {
            "repo_url": "git@github.com:bench/images.git",
            "baseline_sha": "a" * 40,
            "name": "big-images",
            "client": "dvclive",
        }
        headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        httpx.post(f"{url}/api/live", json={**run, "type": "start"}, headers=headers)
        plots = {
            f"dvclive/plots/images/img{i}.png": {"image": base64.b64encode(png).decode()}
            for i, png in enumerate(images)
        }
        bodies = [
            json.dumps({**run, "type": "data", "step": step, "plots": plots}).encode()
            for step in range(args.posts)
        ]
        waits: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    client.get(f"{url}/health")
                    waits.append(time.perf_counter() - started)
                    time.sleep(0.002)

        prober = threading.Thread(target=probe)
        prober.start()
        time.sleep(0.5)
        took = []
        with httpx.Client(timeout=60) as client:
            for body in bodies:
                started = time.perf_counter()
                answer = client.post(f"{url}/api/live", content=body, headers=headers)
                took.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise SystemExit(f"the post was refused: {answer.text}")
                time.sleep(0.3)
        stop.set()
        prober.join()
    finally:
        server.terminate()
        server.wait()
    waits.sort()
    print(f"{args.posts} posts of {len(images)} x {len(images[0]) / 1e6:.1f} MB images:")
    print("  each post took " + ", ".join(f"{t * 1000:.0f}" for t in took) + " ms")
    print(
        f"  /health meanwhile ({len(waits)} probes): p50 {waits[len(waits) // 2] * 1000:.1f} ms,"
        f" p99 {waits[int(len(waits) * 0.99)] * 1000:.1f} ms, longest {waits[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
