"""Write the shipped scenario -> PlantUML pairs from the hand-written scenarios, deterministically.

    .venv/bin/python scripts/build_plantuml_pairs.py             # writes src/genfoundry/data/diagrams/*.jsonl
    .venv/bin/python scripts/build_plantuml_pairs.py --check     # exit 1 unless the shipped files are identical
    .venv/bin/python scripts/build_plantuml_pairs.py --validate  # also check every completion with PlantUML

Scenarios: scripts/plantuml_pairs_content.py (TRAIN and HELDOUT, no scenario shared); prompt and PlantUML
writers: scripts/plantuml_pairs_render.py. Lines interleave the diagram types, so any prefix covers them all.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from itertools import zip_longest
from pathlib import Path

from plantuml_pairs_content import HELDOUT, TRAIN
from plantuml_pairs_render import WRITERS, Pair

OUT = Path(__file__).resolve().parent.parent / "src" / "genfoundry" / "data" / "diagrams"
FILES = {"plantuml_pairs.jsonl": TRAIN, "plantuml_pairs_heldout.jsonl": HELDOUT}


def pairs(specs: dict[str, list[object]]) -> list[Pair]:
    by_kind = [[WRITERS[kind](index, spec) for index, spec in enumerate(items)] for kind, items in specs.items()]
    return [pair for group in zip_longest(*by_kind) for pair in group if pair is not None]


def write(out: Path) -> dict[str, list[Pair]]:
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, specs in FILES.items():
        built = pairs(specs)
        lines = [json.dumps({"prompt": p.prompt, "completion": p.completion}, ensure_ascii=False) for p in built]
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        written[name] = built
    return written


def validate(written: dict[str, list[Pair]]) -> int:
    from genfoundry.config import DiagramSettings
    from genfoundry.diagrams.renderer import make_renderer

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        renderer = make_renderer(DiagramSettings(), work_dir=Path(tmp))
        try:
            for name, built in written.items():
                for number, pair in enumerate(built, start=1):
                    report = renderer.check(pair.completion)
                    if not report.valid:
                        failures += 1
                        print(f"{name}:{number} ({pair.kind}) {report.errors}\n{pair.completion}", file=sys.stderr)
        finally:
            renderer.close()
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    parser.add_argument("--validate", action="store_true", help="check every completion with PlantUML")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp))
            stale = [n for n in FILES if (Path(tmp) / n).read_bytes() != (OUT / n).read_bytes()]
        if stale:
            print(f"out of date: {', '.join(stale)}; run scripts/build_plantuml_pairs.py", file=sys.stderr)
            return 1
        print("shipped files match the scenarios")
        return 0
    written = write(OUT)
    for name, built in written.items():
        kinds = {pair.kind for pair in built}
        print(f"{name}: {len(built)} pairs, {len(kinds)} diagram types")
    if args.validate:
        failures = validate(written)
        print(f"{failures} invalid completions")
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
