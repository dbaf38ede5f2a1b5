"""Cut OpenAI's published OpenAPI description down to the operations genfoundry also serves, for the tests.

    .venv/bin/python scripts/reduce_openai_openapi.py SOURCE/openapi.json    # writes tests/data/openai-openapi/
    .venv/bin/python scripts/reduce_openai_openapi.py SOURCE/openapi.json --check   # exit 1 unless identical

Keeps the paths below with every component their operations reach through `$ref` (plus OpenAI's error envelope),
so tests/openai_schema.py validates answers against OpenAI's own schemas without the 3.4 MB original in the repo.
Add a path here and rerun when genfoundry starts serving another OpenAI endpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

KEPT_PATHS = (
    "/batches",
    "/batches/{batch_id}",
    "/batches/{batch_id}/cancel",
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/files",
    "/files/{file_id}",
    "/files/{file_id}/content",
    "/fine_tuning/jobs",
    "/fine_tuning/jobs/{fine_tuning_job_id}",
    "/fine_tuning/jobs/{fine_tuning_job_id}/cancel",
    "/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints",
    "/fine_tuning/jobs/{fine_tuning_job_id}/events",
    "/fine_tuning/jobs/{fine_tuning_job_id}/pause",
    "/fine_tuning/jobs/{fine_tuning_job_id}/resume",
    "/images/edits",
    "/images/generations",
    "/images/variations",
    "/models",
    "/models/{model}",
    "/moderations",
)
KEPT_SCHEMAS = ("ErrorResponse",)  # the envelope of every error answer, which OpenAI's operations rarely declare
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "openai-openapi" / "openapi.json"


def _refs(node: Any) -> set[str]:
    """Every local `$ref` target under `node`."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _pointer(document: dict[str, Any], ref: str) -> tuple[str, str]:
    """('schemas', 'Name') for '#/components/schemas/Name'."""
    parts = ref.removeprefix("#/").split("/")
    if len(parts) != 3 or parts[0] != "components" or parts[2] not in document["components"].get(parts[1], {}):
        raise SystemExit(f"unexpected $ref {ref!r}")
    return parts[1], parts[2]


def reduce(document: dict[str, Any]) -> dict[str, Any]:
    """The document with only KEPT_PATHS and the components they reach."""
    paths = {path: document["paths"][path] for path in KEPT_PATHS}
    components: dict[str, dict[str, Any]] = {}
    pending = _refs(paths) | {f"#/components/schemas/{name}" for name in KEPT_SCHEMAS}
    while pending:
        section, name = _pointer(document, pending.pop())
        if name in components.get(section, {}):
            continue
        value = document["components"][section][name]
        components.setdefault(section, {})[name] = value
        pending |= _refs(value)
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "paths": paths,
        "components": {section: dict(sorted(items.items())) for section, items in sorted(components.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="OpenAI's openapi.json")
    parser.add_argument("--check", action="store_true", help="compare with the committed copy instead of writing")
    args = parser.parse_args()
    text = json.dumps(reduce(json.loads(args.source.read_text())), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        same = OUT.is_file() and OUT.read_text() == text
        print("identical" if same else f"{OUT} differs from a fresh reduction")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text.encode()) // 1024} KiB, {len(KEPT_PATHS)} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
