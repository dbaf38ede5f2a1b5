"""The OpenAPI document says what the routes do: every route's errors in OpenAI's shape, the media types it answers,
the key it needs; `OPTIONS` and 405 list every method of a path; schema-valid input is never refused as invalid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from genfoundry.api.openapi import ROUTES, route_keys
from genfoundry.app import create_app
from genfoundry.config import Settings
from tests.conftest import LiveServer
from tests.helpers import assert_error

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The app's OpenAPI document; building it needs no services, so the app is not started."""
    app = create_app(Settings(home=tmp_path_factory.mktemp("openapi")))
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_route_has_an_entry_and_every_entry_a_route(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path))
    assert {key for key, _route in route_keys(app)} == set(ROUTES)


def test_errors_are_documented_in_openai_shape(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "HTTPValidationError" not in text  # validation errors are 400s in OpenAI's shape, not FastAPI's 422
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for key, operation in operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (key, status)
        if key.startswith(("GET /healthz", "GET /readyz", "GET /metrics")):
            assert "401" not in responses and "security" not in operation
        else:
            assert "401" in responses, key
            assert {"bearerAuth": []} in operation["security"], key
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), key
    paths = document["paths"]
    assert {"403", "401"} <= set(paths["/v1/keys"]["post"]["responses"])
    assert set(paths["/v1/datasets/{dataset_id}"]["delete"]["responses"]) == {"200", "401", "404"}
    assert "409" in paths["/v1/jobs/{job_id}/cancel"]["post"]["responses"]
    assert {"422", "503"} <= set(paths["/v1/chat/completions"]["post"]["responses"])
    assert "Retry-After" in paths["/v1/images/generations"]["post"]["responses"]["503"]["headers"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_answers_that_are_not_json_say_their_media_type(document: dict[str, Any]) -> None:
    paths = document["paths"]

    def success(path: str, method: str = "get") -> dict[str, Any]:
        responses = paths[path][method]["responses"]
        content: dict[str, Any] = responses.get("200", responses.get("201", {})).get("content", {})
        return content

    assert list(success("/metrics")) == ["text/plain"]
    assert list(success("/v1/models/{model_id}/content")) == ["application/octet-stream"]
    assert list(success("/v1/datasets/{dataset_id}/config")) == ["application/toml"]
    assert list(success("/v1/files/{file_id}/content")) == ["application/jsonl"]
    assert set(success("/v1/datasets/{dataset_id}/items/{item_id}/image")) == {"image/png", "image/jpeg"}
    for path, method in (
        ("/v1/jobs/{job_id}/events", "get"),
        ("/v1/fine_tuning/jobs/{job_id}/events", "get"),
        ("/v1/chat/completions", "post"),
        ("/v1/completions", "post"),
    ):
        content = success(path, method)
        assert set(content) == {"application/json", "text/event-stream"}, path
        assert content["application/json"]["schema"]["$ref"].startswith("#/components/schemas/"), path


def test_favorite_is_a_boolean_in_the_schema_and_null_is_refused(document: dict[str, Any], alice: httpx.Client) -> None:
    favorite = document["components"]["schemas"]["GenerationUpdate"]["properties"]["favorite"]
    assert favorite == {"title": "Favorite", "type": "boolean"}  # may be left out, never null
    generated = alice.post(
        "/v1/images/generations", json={"model": "tiny-sd15", "prompt": "a fox", "size": "64x64", "steps": 2}
    )
    assert generated.status_code == 200, generated.text
    generation_id = generated.json()["data"][0]["id"]
    assert_error(alice.patch(f"/v1/generations/{generation_id}", json={"favorite": None}), 400, param="favorite")
    assert alice.get(f"/v1/generations/{generation_id}").json()["favorite"] is False
    assert alice.patch(f"/v1/generations/{generation_id}", json={"rating": 4}).json()["favorite"] is False


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/datasets/ds_x", "DELETE, GET, OPTIONS"),
        ("/v1/files/file_x", "DELETE, GET, OPTIONS"),
        ("/v1/models/model_x", "DELETE, GET, OPTIONS, PATCH"),
        ("/v1/generations/gen_x", "DELETE, GET, OPTIONS, PATCH"),
        ("/v1/datasets/from-urls", "OPTIONS, POST"),  # its own path, not /v1/datasets/{dataset_id}
        ("/v1/images/generations", "OPTIONS, POST"),
    ],
)
def test_options_and_405_list_every_method_of_the_path(live: LiveServer, path: str, allowed: str) -> None:
    with live.client() as client:
        options = client.options(path)
        assert options.status_code == 204
        assert options.headers["allow"] == allowed
        assert options.content == b""
        refused = client.put(path, json={})
        assert_error(refused, 405)
        assert refused.headers["allow"] == allowed
        assert client.options("/v1/no-such-thing").status_code == 404


def test_metrics_answers_plain_text(live: LiveServer) -> None:
    with live.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
