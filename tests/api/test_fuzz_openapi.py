"""Schemathesis over every route of a real server on a loopback port, from the OpenAPI document the server serves.

No answer may be a 5xx, and none may be one the document does not describe: an undocumented status, a media type
it does not list, a body or headers that do not match its schema, a 405 or `OPTIONS` whose `Allow` is not the
path's methods. The server is its own (own home and key), so what the fuzzer creates stays there. It runs the tiny
models under small limits (32 px, 2 steps, 2 images, 8 tokens, one diagram attempt), so every route runs for real
and stays cheap; dataset URLs (and postpulse's base image URL) are validated and their job runs, but nothing is
fetched. Valid requests name resources seeded beforehand, so they reach real rows and files; invalid ones keep the
ids the fuzzer drew.
The run is bounded and repeatable: derandomized, a fixed number of examples per operation, no example database.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis

from genfoundry.api.openapi import ROUTES
from genfoundry.api.routes.compat import postpulse
from genfoundry.app import create_app
from genfoundry.config import (
    AssistantSettings,
    DatasetSettings,
    JobSettings,
    Limits,
    RouterSettings,
    Settings,
    TextSettings,
)
from genfoundry.datasets.url_fetch import FetchPolicy, FetchResult
from genfoundry.repo import users as users_repo
from genfoundry.services import dataset_jobs
from genfoundry.services.local import open_database
from tests.conftest import LiveServer, LoraFiles, free_port, make_home, start_server
from tests.helpers import TICKETS, wait_for_job

# Examples per operation in the fuzzing phase; the examples and coverage phases add theirs, bounded by the schema.
MAX_EXAMPLES = 10
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "allow_header_conformance",
)


async def refuse_every_url(
    urls: Sequence[str], *, policy: FetchPolicy, on_result: Callable[[int, FetchResult], None] | None = None
) -> list[FetchResult]:
    """`fetch_all` without the network: each URL is refused, so the download job and its items run as usual."""
    results = [FetchResult(url=url, ok=False, reason="fetching is disabled in the fuzz test") for url in urls]
    for index, result in enumerate(results):
        if on_result is not None:
            on_result(index, result)
    return results


@dataclass
class Seeded:
    """Ids of the resources made before fuzzing, by the path parameter that names them."""

    generation: str
    adapter: str
    text_dataset: str
    url_dataset: str
    url_item: str
    url_job: str
    fine_tuning_job: str
    diagram: str

    def path_parameters(self, path: str) -> dict[str, str]:
        if path.startswith("/v1/fine_tuning/jobs/"):
            return {"job_id": self.fine_tuning_job}
        if path.startswith("/v1/datasets/{dataset_id}/items/{item_id}"):
            return {"dataset_id": self.url_dataset, "item_id": self.url_item}
        return {
            "generation_id": self.generation,
            "image_id": self.generation,
            "model_id": self.adapter,
            "dataset_id": self.text_dataset,
            "file_id": self.text_dataset,
            "job_id": self.url_job,
            "diagram_id": self.diagram,
        }


@dataclass
class FuzzServer:
    server: LiveServer
    key: str
    seeded: Seeded
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def fuzz_settings(home: Path) -> Settings:
    return Settings(
        home=home,
        port=free_port(),
        limits=Limits(max_image_side=32, max_images_per_request=2, max_steps=2, max_body_bytes=2 * 1024 * 1024),
        datasets=DatasetSettings(max_urls=4, max_zip_bytes=1024 * 1024, fetch_timeout_s=1),
        # Jobs on threads of this process, so the fetcher above is the one they call.
        jobs=JobSettings(executor="thread"),
        text=TextSettings(max_tokens=8, default_max_tokens=8, max_n=2),
        assistant=AssistantSettings(diagram_attempts=1, max_diagram_attempts=1),
        # The torch encoder loads at once; the default ONNX one is exported first, which is not this test's subject.
        router=RouterSettings(encoder_backend="torch"),
        queue_size=4,
    )


def created(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def seed(client: httpx.Client, lora_file: Path) -> Seeded:
    """One resource of each kind: a generation, an adapter, a text file and a classifier trained on it, a URL
    dataset whose download failed (its items are rejected), a rendered diagram."""
    generation = created(
        client.post(
            "/v1/images/generations", json={"model": "tiny-sd15", "prompt": "a red fox", "size": "32x32", "steps": 2}
        )
    )
    with lora_file.open("rb") as handle:
        adapter = created(
            client.post(
                "/v1/models",
                files={"file": ("lora.safetensors", handle, "application/octet-stream")},
                data={"base": "tiny-sd15", "name": "fuzz lora"},
            ),
            201,
        )
    lines = [json.dumps({"text": text, "label": label}) for label, texts in TICKETS.items() for text in texts]
    text_file = created(
        client.post(
            "/v1/files",
            files={"file": ("tickets.jsonl", "\n".join(lines).encode(), "application/jsonl")},
            data={"purpose": "fine-tune"},
        )
    )
    method = {"type": "classifier", "classifier": {"hyperparameters": {"validation_fraction": 0.25}}}
    classifier = created(
        client.post(
            "/v1/fine_tuning/jobs",
            json={"model": "all-MiniLM-L6-v2", "training_file": text_file["id"], "method": method},
        )
    )
    urls = created(
        client.post("/v1/datasets/from-urls", json={"name": "urls", "urls": ["https://example.com/a.png"]}), 202
    )
    assert wait_for_job(client, urls["job_id"])["status"] == "failed"  # nothing was fetched, so no image came
    items = created(client.get(f"/v1/datasets/{urls['id']}/items"))["data"]
    assert [item["status"] for item in items] == ["rejected"]
    diagram = created(client.post("/v1/diagrams/render", json={"plantuml": "@startuml\nA -> B: hi\n@enduml"}))
    assert wait_for_job(client, classifier["id"], timeout=120)["status"] == "succeeded"
    return Seeded(
        generation=generation["data"][0]["id"],
        adapter=adapter["id"],
        text_dataset=text_file["id"],
        url_dataset=urls["id"],
        url_item=items[0]["id"],
        url_job=urls["job_id"],
        fine_tuning_job=classifier["id"],
        diagram=diagram["id"],
    )


async def refuse_the_url(url: str, *, policy: FetchPolicy, client: object = None) -> FetchResult:
    """`fetch_image` without the network (postpulse's `base_image_url`): the URL is refused, as a guarded one is."""
    return FetchResult(url=url, ok=False, reason="not fetched in this test")


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path, lora_files: LoraFiles
) -> Iterator[FuzzServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dataset_jobs, "fetch_all", refuse_every_url)
        patch.setattr(postpulse, "fetch_image", refuse_the_url)
        settings = fuzz_settings(make_home(tmp_path_factory.mktemp("fuzz"), tiny_dir))
        with open_database(settings) as session:
            key = users_repo.create_key(session=session, name="fuzz", is_admin=True).key
            session.commit()
        server = start_server(settings)
        try:
            with server.client(key) as client:
                seeded = seed(client, lora_files.sd15_a)
            yield FuzzServer(server=server, key=key, seeded=seeded)
        finally:
            server.stop()


def served_document() -> dict[str, Any]:
    """The document the app serves at /openapi.json, built without starting it (nothing is read or written)."""
    app = create_app(Settings(home=Path(tempfile.gettempdir()) / "genfoundry-openapi-unused"))
    document: dict[str, Any] = app.openapi()
    return document


CONFIG = schemathesis.Config.from_dict(
    {
        "request-timeout": 60,
        "max-stream-events": 20,
        # The key is sent by the test (it exists once the server does), not drawn from the security scheme.
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    }
)
schema = schemathesis.openapi.from_dict(served_document(), config=CONFIG)


@schema.parametrize()
def test_every_answer_is_documented_and_none_is_a_server_error(
    case: schemathesis.Case[Any], fuzz_server: FuzzServer
) -> None:
    # Valid requests of the fuzzing phase name the seeded resources, so they reach real rows and files; those of
    # the coverage phase keep the ids drawn, so every path's answer to an unknown id is checked too. Deletions keep
    # theirs (the operations after them would find nothing); keys are not seeded (revoking the fuzzer's own would
    # leave only 401s to test).
    meta = case.meta
    aimed = meta is not None and meta.phase.name == "fuzzing" and meta.generation.mode.is_positive
    if aimed and case.path_parameters and case.method != "DELETE":
        seeded = fuzz_server.seeded.path_parameters(case.path)
        case.path_parameters = {name: seeded.get(name, value) for name, value in case.path_parameters.items()}
    response = case.call_and_validate(
        base_url=fuzz_server.server.url, headers={"Authorization": f"Bearer {fuzz_server.key}"}
    )
    fuzz_server.statuses[case.operation.label][response.status_code] += 1


def test_the_server_serves_the_document_fuzzed(fuzz_server: FuzzServer) -> None:
    with fuzz_server.server.client() as client:
        assert client.get("/openapi.json").json() == served_document()


def test_the_fuzzing_reached_every_route(fuzz_server: FuzzServer) -> None:
    """After the fuzz test (same module): its key still works, every operation was called and answered something
    besides 401, and valid requests reached the seeded resources."""
    statuses = fuzz_server.statuses
    if not statuses:
        pytest.skip("runs after test_every_answer_is_documented_and_none_is_a_server_error")
    with fuzz_server.server.client(fuzz_server.key) as client:
        assert client.get("/v1/models").status_code == 200
    assert set(statuses) == set(ROUTES)
    assert not [label for label, counts in statuses.items() if set(counts) <= {401}]
    for label in ("GET /v1/generations/{generation_id}", "GET /v1/models/{model_id}", "GET /v1/jobs/{job_id}/events"):
        assert statuses[label][200], (label, statuses[label])
