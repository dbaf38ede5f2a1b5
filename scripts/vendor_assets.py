"""Vendors the studio's third-party JavaScript and CSS from the npm registry at pinned versions.

Each package's tarball is checked against the registry's published sha512 integrity pinned below, then only the
files the studio serves (and the licence) are copied into the repository, with a VENDOR.md that records package,
version, licence and integrity. Nothing is fetched at install or run time: the copied files are committed.

    python scripts/vendor_assets.py          # fetch, verify and (re)write the vendored files
    python scripts/vendor_assets.py --check  # fetch, verify, and fail if a committed file differs from the tarball
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity for this version
    license: str
    files: dict[str, str]  # path in the tarball (under package/) -> file name in dest
    dest: str  # folder, relative to the repository root

    @property
    def tarball(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


STATIC = "src/genfoundry/web/static/vendor"
PACKAGES = [
    Package(
        "@alpinejs/csp",
        "3.17.4",
        "sha512-SlRXmqO6kYhnxlg+99etmuzJtE9Lk4QbKjBHqerXzaMflJqoJXdz/SI3IvHJGZ/vRVyC3bR0SSBz40oY7goBeg==",
        "MIT",
        {"dist/cdn.min.js": "alpine-csp.min.js"},
        f"{STATIC}/alpinejs-csp",
    ),
    Package(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        "MIT",
        {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css", "LICENSE": "LICENSE"},
        f"{STATIC}/uplot",
    ),
    Package(
        "swagger-ui-dist",
        "5.36.0",
        "sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A==",
        "Apache-2.0",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui.css": "swagger-ui.css",
            "favicon-32x32.png": "favicon-32x32.png",
            "LICENSE": "LICENSE",
        },
        f"{STATIC}/swagger-ui",
    ),
    # Test-only: the accessibility checker the studio's browser tests inject into each page.
    Package(
        "axe-core",
        "4.14.1",
        "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        "MPL-2.0",
        {"axe.min.js": "axe.min.js", "LICENSE": "LICENSE"},
        "tests/web/vendor/axe-core",
    ),
]


def fetch(package: Package) -> dict[str, bytes]:
    data = httpx.get(package.tarball, timeout=120, follow_redirects=True).raise_for_status().content
    algorithm, expected = package.integrity.split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{package.name}@{package.version}: integrity mismatch ({actual} != {expected})")
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for source, target in package.files.items():
            member = archive.extractfile(f"package/{source}")
            if member is None:
                raise SystemExit(f"{package.name}@{package.version}: no {source} in the tarball")
            files[target] = member.read()
    return files


def vendor_md(packages: list[Package]) -> str:
    lines = [
        "# Vendored assets",
        "",
        "Copied from the npm registry by `scripts/vendor_assets.py` (tarball integrity checked); do not edit by hand.",
        "To upgrade: change the version and integrity (`npm view PACKAGE@VERSION dist.integrity`) in the script,",
        "run it, and run the studio's browser tests.",
        "",
        "| package | version | licence | files | integrity |",
        "|---|---|---|---|---|",
    ]
    for p in packages:
        lines.append(f"| {p.name} | {p.version} | {p.license} | {', '.join(p.files.values())} | `{p.integrity}` |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a vendored file differs from its tarball")
    args = parser.parse_args()
    stale: list[str] = []
    for package in PACKAGES:
        dest = ROOT / package.dest
        for name, content in fetch(package).items():
            path = dest / name
            if args.check:
                if not path.exists() or path.read_bytes() != content:
                    stale.append(str(path.relative_to(ROOT)))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    for folder in sorted({p.dest for p in PACKAGES}):
        top = ROOT / folder.rsplit("/", 1)[0] / "VENDOR.md"
        text = vendor_md([p for p in PACKAGES if p.dest.rsplit("/", 1)[0] == folder.rsplit("/", 1)[0]])
        if args.check:
            if not top.exists() or top.read_text() != text:
                stale.append(str(top.relative_to(ROOT)))
        else:
            top.write_text(text)
    if stale:
        print("differs from the registry:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("vendored assets match their pinned registry versions" if args.check else "vendored assets written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
