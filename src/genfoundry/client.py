"""A small HTTP client for the CLI's commands when they run on a server: images and adapter imports."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from genfoundry.errors import GenfoundryError


def raise_for_error(response: httpx.Response) -> None:
    """A non-2xx answer as a GenfoundryError carrying the server's message and status."""
    if response.is_success:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    error = GenfoundryError(f"server answered {response.status_code}: {message}")
    error.status_code = response.status_code
    raise error


def generate_remote(
    server: str, api_key: str | None, fields: dict[str, Any], *, image: Path | None, strength: float
) -> list[tuple[bytes, int, float]]:
    """POST a generation (an edit with `image`); returns (png bytes, seed, seconds) per image."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    payload = {**fields, "response_format": "b64_json"}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=httpx.Timeout(600, connect=10)) as client:
        if image is None:
            response = client.post("/v1/images/generations", json=payload)
        else:
            form = {k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in payload.items()}
            form["strength"] = str(strength)
            with image.open("rb") as handle:
                response = client.post("/v1/images/edits", data=form, files={"image": (image.name, handle)})
    raise_for_error(response)
    return [
        (base64.b64decode(item["b64_json"]), item["seed"], item["generation_time_s"])
        for item in response.json()["data"]
    ]


def import_adapter_remote(server: str, api_key: str | None, file: Path, form: dict[str, str]) -> dict[str, Any]:
    """POST /v1/models: a LoRA file registered as an adapter; returns the model object."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(600, connect=10)
    with (
        httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout) as client,
        file.open("rb") as handle,
    ):
        response = client.post("/v1/models", data=form, files={"file": (file.name, handle)})
    raise_for_error(response)
    model: dict[str, Any] = response.json()
    return model
