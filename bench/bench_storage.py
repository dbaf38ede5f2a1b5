"""S3 vs the local store, side by side, through real servers: what a generation's write and a dataset upload cost.

Two `genfoundry serve` processes on one home's models: one with the default local store, one with
GENFOUNDRY_STORAGE_URL=s3://… on an S3 protocol server (moto, on loopback — so the figure is the store's protocol and
client cost, not a network's). Rounds alternate between them:
1. a 64×64 tiny-sd15 generation with `response_format: "url"` (the PNG written to the store before the answer), p50;
2. a dataset upload of 200 small images as one ZIP (each image and caption written to the store), p50.
Prints S3 / local for each; the issue asks for the ratio, it sets no goal. The router's preload is off on both
servers: its encoder export holds image requests back while it runs, which would time the export, not the store.

    python -m bench.bench_storage [--rounds 5] [--images 200]
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zipfile

import httpx
from PIL import Image

from bench.common import free_port, make_home, p50, report, running_server
from tests.s3_server import running_s3

BUCKET = "genfoundry-bench"


def _zip(images: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(images):
            image = io.BytesIO()
            Image.new("RGB", (96, 96), (i % 256, (7 * i) % 256, 90)).save(image, format="PNG")
            archive.writestr(f"img{i:04d}.png", image.getvalue())
            archive.writestr(f"img{i:04d}.txt", f"a swatch number {i}")
    return buffer.getvalue()


def _generate(client: httpx.Client, seed: int) -> float:
    body = {"model": "tiny-sd15", "prompt": "a cat", "size": "64x64", "steps": 2, "seed": seed}
    body["response_format"] = "url"
    start = time.perf_counter()
    client.post("/v1/images/generations", json=body).raise_for_status()
    return time.perf_counter() - start


def _upload(client: httpx.Client, archive: bytes) -> float:
    start = time.perf_counter()
    response = client.post("/v1/datasets", files={"file": ("d.zip", archive, "application/zip")}, data={"name": "b"})
    response.raise_for_status()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    archive = _zip(args.images)
    home, s3_home = make_home(), make_home()
    with running_s3(free_port()) as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        s3_settings = {
            "GENFOUNDRY_ROUTER__PRELOAD": "false",
            "GENFOUNDRY_STORAGE_URL": f"s3://{BUCKET}/artifacts",
            "GENFOUNDRY_STORAGE_OPTIONS": json.dumps(s3.options()),
        }
        with (
            running_server(home, GENFOUNDRY_ROUTER__PRELOAD="false") as local_url,
            running_server(s3_home, **s3_settings) as s3_url,
            httpx.Client(base_url=local_url, timeout=600) as local,
            httpx.Client(base_url=s3_url, timeout=600) as remote,
        ):
            for client in (local, remote):  # warm: the pipeline loaded, the first upload's imports done
                _generate(client, 0)
                _upload(client, _zip(2))
            times: dict[str, list[float]] = {"gen local": [], "gen s3": [], "zip local": [], "zip s3": []}
            for seed in range(1, args.rounds + 1):
                times["gen local"].append(_generate(local, seed))
                times["gen s3"].append(_generate(remote, seed))
                times["zip local"].append(_upload(local, archive))
                times["zip s3"].append(_upload(remote, archive))
    gen, upload = (p50(times[f"{what} s3"]) / p50(times[f"{what} local"]) for what in ("gen", "zip"))
    rows = [
        (
            "generation (64², 2 steps, url) p50",
            f"local {p50(times['gen local']):.3f} s, S3 {p50(times['gen s3']):.3f} s",
        ),
        ("  S3 / local", f"{gen:.2f}x"),
        (
            f"dataset upload ({args.images} images) p50",
            f"local {p50(times['zip local']):.2f} s, S3 {p50(times['zip s3']):.2f} s",
        ),
        ("  S3 / local", f"{upload:.2f}x"),
    ]
    report(f"artifact store: S3 (moto on loopback) vs local, {args.rounds} alternating rounds", rows)


if __name__ == "__main__":
    main()
