"""A Python that sees only what the GPU machine would: this venv's distributions that scripts/device_packages.txt
lists (the machine's image) or that travel as wheels in .whl/ (scripts/device_wheels.sh), symlinked into one
folder that a fresh venv without pip reads through a .pth file. With it, a dry run checks that the wheels are
enough (docs/gpu.md):

    .venv/bin/python scripts/device_python.py /tmp/device-python
    PYTHONPATH=src /tmp/device-python/venv/bin/python -m bench.gpu_quick --dry-run

Versions are this venv's (Python 3.11, the CPU torch), not the machine's. huggingface-hub here (2.x) needs httpx2,
which the machine's hub (1.33) does not, so those two come along too.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HUB_2_NEEDS = {"httpx2", "httpcore2", "truststore"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_names() -> set[str]:
    listed = (REPO / "scripts" / "device_packages.txt").read_text(encoding="utf-8").splitlines()
    device = {normalized(line) for line in listed if line and not line.startswith("#")}
    wheels = sorted((REPO / ".whl").glob("*.whl"))
    if not wheels:
        raise SystemExit("no wheels in .whl/: run scripts/device_wheels.sh first")
    return device | {normalized(path.name.split("-")[0]) for path in wheels} | HUB_2_NEEDS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="an empty or absent folder (replaced)")
    args = parser.parse_args()
    allowed = allowed_names()
    site = Path(sysconfig.get_paths()["purelib"])
    shutil.rmtree(args.dest, ignore_errors=True)
    linked = args.dest / "site"
    linked.mkdir(parents=True)
    kept, left_out = [], []
    for dist in md.distributions(path=[str(site)]):
        name = normalized(dist.metadata["Name"])
        if name not in allowed or name == "genfoundry":  # genfoundry comes from src through PYTHONPATH
            left_out.append(name)
            continue
        kept.append(name)
        for top in {Path(str(file)).parts[0] for file in dist.files or []}:
            source, target = site / top, linked / top
            if top not in ("..", "bin") and source.exists() and not target.exists():
                target.symlink_to(source)
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(args.dest / "venv")], check=True)
    pth_dir = Path(
        subprocess.run(
            [
                str(args.dest / "venv" / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (pth_dir / "device.pth").write_text(f"{linked.resolve()}\n", encoding="utf-8")
    print(
        f"{args.dest / 'venv' / 'bin' / 'python'}: {len(kept)} distributions; left out: {', '.join(sorted(left_out))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
