"""ZIP ingestion: images/s for 500 images of 1024×1024, and peak memory of a 50-image vs a 500-image ZIP
(each run in a fresh subprocess; target ratio ≤ 1.2, i.e. streaming, not loading)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import report

CHILD = """
import json, resource, sys, time
from pathlib import Path
from genfoundry.datasets.zip_ingest import ingest_zip
start = time.perf_counter()
result = ingest_zip(Path(sys.argv[1]), Path(sys.argv[2]))
elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"accepted": result.accepted, "seconds": elapsed, "peak_mib": peak_kib / 1024}))
"""


def build_zip(path: Path, count: int, side: int) -> None:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(count):
            # Smooth gradients plus noise: JPEG-sized like a photo (~200-400 KB), all distinct.
            base = np.linspace(0, 255, side, dtype=np.float32)
            pixels = np.stack([np.add.outer(base, base * (i % 7) / 7) % 256] * 3, axis=-1)
            pixels += rng.normal(0, 12, size=pixels.shape)
            buffer = io.BytesIO()
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
            archive.writestr(f"photos/img_{i:04d}.jpg", buffer.getvalue())


def run_child(zip_path: Path, out_dir: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(zip_path), str(out_dir)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=500)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="genfoundry-bench-zip-") as tmp:
        root = Path(tmp)
        results = {}
        for label, count in (("small", args.small), ("large", args.large)):
            archive = root / f"{label}.zip"
            build_zip(archive, count, args.side)
            results[label] = run_child(archive, root / f"out-{label}")
            results[label]["zip_mib"] = archive.stat().st_size / 2**20
    small, large = results["small"], results["large"]
    report(
        f"ZIP ingestion: {args.side}x{args.side} JPEGs, each run in a fresh process",
        [
            (
                f"{args.small} images",
                f"{small['seconds']:.1f} s ({args.small / small['seconds']:.1f} images/s), "
                f"peak RSS {small['peak_mib']:.0f} MiB, ZIP {small['zip_mib']:.0f} MiB",
            ),
            (
                f"{args.large} images",
                f"{large['seconds']:.1f} s ({args.large / large['seconds']:.1f} images/s), "
                f"peak RSS {large['peak_mib']:.0f} MiB, ZIP {large['zip_mib']:.0f} MiB",
            ),
            ("peak memory ratio (large / small)", f"{large['peak_mib'] / small['peak_mib']:.2f}  (target <= 1.2)"),
        ],
    )


if __name__ == "__main__":
    main()
