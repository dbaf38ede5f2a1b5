"""POST /v1/diagrams and POST /v1/diagrams/render answer what the OpenAPI document declares, in every case: every
required field present (null where it is nullable), nothing undeclared. Checked on the real answers of the real
server, against the document that server serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from genfoundry.db.session import make_engine, make_session_factory
from genfoundry.repo import users as users_repo
from genfoundry.services.text_adapters import register_text_adapter
from genfoundry.storage import ArtifactStore
from genfoundry.text.formats import TextFormat
from tests.conftest import Keys, LiveServer

# Scenarios the adapter below learns by heart, so its greedy answers are known: a valid diagram, and one the
# screen refuses (an error PlantUML gives no line for, which the API reports with `"line": null`).
VALID, REFUSED = "draw the handshake", "draw the forbidden file"
PAIRS = {VALID: "@startuml\nA -> B\n@enduml", REFUSED: "@startuml\n!include /etc/passwd\n@enduml"}


@pytest.fixture(scope="module")
def diagram_adapter(live: LiveServer, keys: Keys, tiny_llm: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A LoRA on the server's tiny-llm, overfit on PAIRS (seconds on a CPU), registered for alice. Trained in a
    process of its own, as jobs train: torch.export in this process (the server's router encoder) is not
    thread-safe beside a training step."""
    work = tmp_path_factory.mktemp("diagram-adapter")
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in PAIRS.items()))
    config = {
        "base_source": str(tiny_llm),
        "base_id": "tiny-llm",
        "max_steps": 60,
        "batch_size": 2,
        "learning_rate": 3e-3,
        "rank": 16,
        "lora_dropout": 0.0,
        "checkpoint_every_n_steps": 10_000,
        "max_seq_length": 64,
    }
    train = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from genfoundry.training.sft import train_sft\n"
        "from genfoundry.training.sft_config import SftTrainingConfig\n"
        "result = train_sft(SftTrainingConfig(**json.loads(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "print(result.adapter_path)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", train, json.dumps(config), str(data), str(work / "run")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    adapter_path = Path(done.stdout.split()[-1])
    settings = live.settings
    engine = make_engine(settings.resolved_database_url)
    try:
        sessions = make_session_factory(engine)
        with sessions() as session:
            alice = users_repo.authenticate(session=session, key=keys.alice)
            assert alice is not None
            alice_id = alice.id
            session.commit()
        adapter = register_text_adapter(
            sessions=sessions,
            store=ArtifactStore(settings.resolved_storage_url, cache_dir=settings.home / "cache" / "artifacts"),
            owner_id=alice_id,
            base_id="tiny-llm",
            name="diagrams by heart",
            peft_dir=adapter_path,
            text_format=TextFormat.read(adapter_path),
            tags={"test": "diagram schema"},
        )
    finally:
        engine.dispose()
    return str(adapter.id)


@pytest.fixture(scope="module")
def openapi(live: LiveServer) -> dict[str, Any]:
    with live.client() as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def schema_errors(openapi: dict[str, Any], path: str, body: dict[str, Any]) -> list[str]:
    """What in `body` breaks the 200 answer's schema that `path` declares: JSON Schema errors, undeclared fields."""
    declared = openapi["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**declared, "components": openapi["components"]})
    errors = [f"/{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(body)]
    model = openapi["components"]["schemas"][declared["$ref"].rsplit("/", 1)[1]]
    return errors + [f"{name}: not declared" for name in sorted(set(body) - set(model["properties"]))]


def generate(alice: httpx.Client, **request: object) -> dict[str, Any]:
    response = alice.post("/v1/diagrams", json=request)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_no_valid_try_still_answers_the_declared_schema(
    openapi: dict[str, Any], alice: httpx.Client, diagram_adapter: str
) -> None:
    body = generate(alice, prompt=REFUSED, model=diagram_adapter, max_attempts=1)
    assert body["valid"] is False and body["plantuml"] == PAIRS[REFUSED]
    assert body["id"] is None and "url" not in body and "b64_json" not in body and "diagram_type" not in body
    assert body["errors"] == body["tries"][0]["errors"]
    assert [error["line"] for error in body["errors"]] == [None] and "!include" in body["errors"][0]["message"]
    assert schema_errors(openapi, "/v1/diagrams", body) == []
    # The check bites: the answer as it was before (required nulls dropped) breaks the schema.
    dropped = {**body, "errors": [{"message": body["errors"][0]["message"]}]}
    del dropped["id"]
    assert schema_errors(openapi, "/v1/diagrams", dropped) == [
        '/: "id" is a required property',
        '/errors/0: "line" is a required property',
    ]


def test_a_random_model_that_never_writes_plantuml_answers_the_declared_schema(
    openapi: dict[str, Any], alice: httpx.Client
) -> None:
    body = generate(alice, prompt="a class diagram of a library", model="tiny-llm", max_attempts=2, max_tokens=8)
    assert body["valid"] is False and body["id"] is None and len(body["tries"]) == 2
    assert all(isinstance(error["line"], int) for error in body["errors"])  # PlantUML's syntax errors
    assert schema_errors(openapi, "/v1/diagrams", body) == []


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_a_valid_diagram_answers_the_declared_schema(
    openapi: dict[str, Any], alice: httpx.Client, diagram_adapter: str, response_format: str
) -> None:
    body = generate(alice, prompt=VALID, model=diagram_adapter, max_attempts=1, response_format=response_format)
    assert body["valid"] is True and body["plantuml"] == PAIRS[VALID] and body["errors"] == []
    assert body["id"].startswith("dgm_") and body["diagram_type"] == "sequence"
    other = "b64_json" if response_format == "url" else "url"
    assert body[response_format] and other not in body
    assert schema_errors(openapi, "/v1/diagrams", body) == []


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_a_render_answers_the_declared_schema(
    openapi: dict[str, Any], alice: httpx.Client, response_format: str
) -> None:
    plantuml = "@startuml\nAlice -> Bob : hello\n@enduml"
    response = alice.post(
        "/v1/diagrams/render", json={"plantuml": plantuml, "format": "svg", "response_format": response_format}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body[response_format] and ("url" if response_format == "b64_json" else "b64_json") not in body
    assert schema_errors(openapi, "/v1/diagrams/render", body) == []
