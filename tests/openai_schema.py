"""Validate genfoundry's answers against OpenAI's published OpenAPI description (tests/data/openai-openapi).

    assert_matches_openai(response.json(), "POST", "/v1/chat/completions", 200)
    assert_matches_openai(chunk, "POST", "/v1/chat/completions", 200, stream_event=True)   # one SSE data payload
    assert_matches_openai(response.json(), "GET", "/v1/files/file-abc", 404)                 # OpenAI's error envelope

`path` may carry the /v1 prefix and may be concrete ("/v1/models/tiny-sd") or OpenAI's template ("/models/{model}").
The schema is the operation's declared answer for that status (its text/event-stream schema when `stream_event`);
an error status the operation does not declare is checked against OpenAI's `ErrorResponse`. Validation is JSON
Schema Draft 2020-12 (what OpenAPI 3.1 schemas are), `$ref`s resolved through `referencing`. OpenAI's file still marks
some schemas `nullable: true` (OpenAPI 3.0's keyword, unknown to 3.1, so a validator would ignore it and refuse the
`null` OpenAI itself sends, e.g. a stream chunk's `finish_reason`): such a schema is read as "this or null"; and
3.0's boolean `exclusiveMinimum` becomes 3.1's number.
Our additive fields pass wherever OpenAI's schema leaves `additionalProperties` open, as it mostly does.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_FILE = Path(__file__).parent / "data" / "openai-openapi" / "openapi.json"
SPEC_URI = "urn:openai:openapi"


@cache
def openai_spec() -> dict[str, Any]:
    """The reduced OpenAI OpenAPI document with OpenAPI 3.0 leftovers in 3.1's terms (`nullable`, boolean
    `exclusiveMinimum`)."""
    return _as_openapi_3_1(json.loads(SPEC_FILE.read_text()))


def _as_openapi_3_1(node: Any) -> Any:
    if isinstance(node, list):
        return [_as_openapi_3_1(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_openapi_3_1(value) for key, value in node.items() if not (key == "nullable" and value)}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # 3.0's flag on `minimum` is 3.1's number
        if isinstance(converted.get(bound), bool) and converted.pop(bound) and limit in converted:
            converted[bound] = converted.pop(limit)
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource.from_contents(openai_spec(), default_specification=DRAFT202012))


def openai_path(path: str) -> str:
    """OpenAI's path template for `path` ('/v1/models/tiny-sd' → '/models/{model}'); AssertionError if none."""
    path = path.split("?", 1)[0].removeprefix("/v1")
    paths = openai_spec()["paths"]
    if path in paths:
        return path
    parts = path.split("/")
    for template in paths:
        pieces = template.split("/")
        if len(pieces) == len(parts) and all(
            t == part or t.startswith("{") for part, t in zip(parts, pieces, strict=True)
        ):
            return template
    raise AssertionError(f"OpenAI has no path {path!r} (or tests/data/openai-openapi leaves it out)")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follows a '#/components/…' $ref inside the document (OpenAPI response objects, not schemas)."""
    while "$ref" in node:
        section, name = node["$ref"].removeprefix("#/components/").split("/")
        node = openai_spec()["components"][section][name]
    return node


def response_schema(method: str, path: str, status: int, *, stream_event: bool = False) -> dict[str, Any]:
    """The JSON schema OpenAI declares for that answer (a $ref into the document)."""
    template = openai_path(path)
    operation = openai_spec()["paths"][template].get(method.lower())
    assert operation is not None, f"OpenAI has no {method.upper()} {template}"
    declared = operation["responses"].get(str(status))
    if declared is None:
        assert status >= 400, f"OpenAI declares no {status} answer for {method.upper()} {template}"
        return {"$ref": f"{SPEC_URI}#/components/schemas/ErrorResponse"}
    content = _resolve(declared).get("content", {})
    media = "text/event-stream" if stream_event else "application/json"
    assert media in content, f"OpenAI declares no {media} answer for {method.upper()} {template} {status}"
    schema = content[media]["schema"]
    if "$ref" in schema:
        return {"$ref": SPEC_URI + schema["$ref"]}
    return {
        "$ref": SPEC_URI
        + "#/paths/"
        + _escape(template)
        + f"/{method.lower()}/responses/{status}"
        + f"/content/{_escape(media)}/schema"
    }


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _explain(error: ValidationError) -> str:
    """The violation's message; for anyOf/oneOf, also the closest branch's own violation."""
    message = error.message[:300]
    if error.context:
        closest = best_match(error.context)
        message += f" (closest: at /{'/'.join(map(str, closest.absolute_path))}: {closest.message[:200]})"
    return message


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), registry=_registry())


def assert_matches_openai(body: Any, method: str, path: str, status: int = 200, *, stream_event: bool = False) -> None:
    """`body` (parsed JSON) validates against OpenAI's schema for that operation and status, else AssertionError
    listing every violation with where it is."""
    schema = response_schema(method, path, status, stream_event=stream_event)
    errors = sorted(_validator(json.dumps(schema)).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {_explain(e)}" for e in errors]
        kind = "stream event" if stream_event else "answer"
        raise AssertionError(
            f"{method.upper()} {path} {status} {kind} does not match OpenAI's schema ({schema['$ref']}):\n"
            + "\n".join(lines)
        )
