"""The official `openai` Node SDK (the version tests/clients/node/package-lock.json pins, installed there by
scripts/ensure-node-clients.sh) against the real server: a few ESM scripts, one `node` process each, given the
server's /v1 URL and a key by environment, print one JSON answer that these tests read. Without node, or without
the SDK installed, the tests fail saying how to get them."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error

PROJECT = Path(__file__).parent / "node"
INSTALL = "run scripts/ensure-node-clients.sh (`make test` does) to install the openai Node SDK"


def pinned_version() -> str:
    lock = json.loads((PROJECT / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/openai"]["version"])


def run_script(live: LiveServer, key: str, script: str, **env: str) -> dict[str, Any]:
    """Runs tests/clients/node/<script> with node; returns what it printed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed: install Node.js 20 or later (with npm), then {INSTALL}")
    if not (PROJECT / "node_modules" / "openai" / "package.json").is_file():
        pytest.fail(f"the openai Node SDK is not installed in {PROJECT}: {INSTALL}")
    variables = {**os.environ, "GENFOUNDRY_BASE_URL": f"{live.url}/v1", "GENFOUNDRY_API_KEY": key, **env}
    done = subprocess.run(
        [node, script], cwd=PROJECT, env=variables, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["sdk_version"] == pinned_version()
    return result


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def text(live: LiveServer, keys: Keys) -> dict[str, Any]:
    return run_script(live, keys.alice, "text.mjs")


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A picture with detail, so 'kept' means more than one flat colour."""
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def images(live: LiveServer, keys: Keys, source: Image.Image, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("node-images")
    # OpenAI's mask: opaque except the left half, transparent (alpha 0) where the edit goes.
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))
    (folder / "in.png").write_bytes(png(source))
    (folder / "mask.png").write_bytes(png(mask))
    env = {"GENFOUNDRY_IMAGE": str(folder / "in.png"), "GENFOUNDRY_MASK": str(folder / "mask.png")}
    return run_script(live, keys.alice, "images.mjs", **env)


def test_models_list_includes_auto(text: dict[str, Any]) -> None:
    models = {model["id"]: model["capabilities"] for model in text["models"]}
    assert models["auto"] == ["chat"]
    assert "chat" in models["tiny-llm"]
    assert models["tiny-sd15"] == ["images"]


def test_chat_completion(text: dict[str, Any]) -> None:
    assert isinstance(text["chat"]["content"], str)
    assert text["chat"]["finish_reason"] in ("stop", "length")
    assert text["chat"]["completion_tokens"] > 0


def test_streamed_chat_ends_with_its_finish_reason(text: dict[str, Any]) -> None:
    *before, last = text["stream"]["finish_reasons"]
    assert text["stream"]["content"]
    assert set(before) == {None}
    assert last in ("stop", "length")


def test_model_auto(text: dict[str, Any]) -> None:
    assert text["auto"]["model"]
    assert isinstance(text["auto"]["content"], str)


def test_embeddings_base64_by_default_decode_to_the_float_answer(text: dict[str, Any]) -> None:
    embeddings = text["embeddings"]
    assert embeddings["asked_by_default"] == "base64"  # and the SDK decoded the answer
    decoded, floats = np.array(embeddings["default"]), np.array(embeddings["float"])
    assert floats.shape == (2, 384)
    assert np.allclose(decoded, floats, atol=1e-6)
    assert embeddings["prompt_tokens"] > 0


def test_fine_tuning_jobs_list(text: dict[str, Any]) -> None:
    assert isinstance(text["jobs"]["has_more"], bool)
    assert all(job["object"] == "fine_tuning.job" for job in text["jobs"]["data"])


@pytest.mark.parametrize("call", ["chat_unknown_model", "retrieve_unknown_model"])
def test_unknown_model_is_the_sdks_not_found_error(text: dict[str, Any], call: str) -> None:
    error = text["errors"][call]
    assert error["class"] == "NotFoundError"
    assert error["is_api_error"]
    assert error["status"] == 404
    assert error["type"] and error["code"]
    assert "no-such-model" in error["message"]


def test_unknown_chat_model_error_carries_the_servers_fields(text: dict[str, Any], alice: httpx.Client) -> None:
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    sent = assert_error(alice.post("/v1/chat/completions", json=body), 404, param="model")
    error = text["errors"]["chat_unknown_model"]
    assert (error["type"], error["code"], error["param"]) == (sent["type"], sent["code"], "model")
    assert error["message"].endswith(sent["message"])  # the SDK prefixes the status


def test_image_generation_as_b64_json(images: dict[str, Any]) -> None:
    assert decode(images["generated"]["b64_json"]).size == (64, 64)


def test_streamed_generation_sends_partial_images(images: dict[str, Any]) -> None:
    events = images["stream"]
    assert [event["type"] for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [event["partial_image_index"] for event in events[:2]] == [0, 1]
    assert decode(events[-1]["b64_json"]).format == "WEBP"


def test_edit_with_a_mask_keeps_the_opaque_half(images: dict[str, Any], source: Image.Image) -> None:
    assert images["edited"]["output_format"] == "png"
    out = np.asarray(decode(images["edited"]["b64_json"]).convert("RGB")).astype(int)
    assert np.abs(out[:, 32:] - np.asarray(source)[:, 32:].astype(int)).mean() < 1.0


def test_batch_of_chat_requests(live: LiveServer, keys: Keys) -> None:
    body = {"model": "tiny-llm", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
    lines = [
        json.dumps({"custom_id": f"line-{n}", "method": "POST", "url": "/v1/chat/completions", "body": body})
        for n in range(2)
    ]
    result = run_script(live, keys.bob, "batches.mjs", GENFOUNDRY_BATCH_LINES="\n".join(lines) + "\n")
    assert result["file"]["purpose"] == "batch"
    assert result["batch"]["status"] == "completed"
    assert result["batch"]["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert result["created"]["id"] in result["listed"]
    answers = [json.loads(line) for line in result["output"].splitlines()]
    assert sorted(answer["custom_id"] for answer in answers) == ["line-0", "line-1"]
    assert all(answer["response"]["status_code"] == 200 for answer in answers)
