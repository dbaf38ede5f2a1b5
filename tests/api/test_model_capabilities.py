"""/v1/models as chat clients read it (Open WebUI builds its picker from it): `auto` is listed, every model says
what it can be asked for in `capabilities`, and `?capability=` keeps only those models."""

from __future__ import annotations

import httpx
import openai

from tests.conftest import LiveServer, LoraFiles, TextAdapters
from tests.helpers import assert_error
from tests.openai_schema import assert_matches_openai


def listed(client: httpx.Client, **params: str) -> dict[str, dict]:
    response = client.get("/v1/models", params=params)
    assert response.status_code == 200, response.text
    assert_matches_openai(response.json(), "GET", "/v1/models")
    return {model["id"]: model for model in response.json()["data"]}


def test_every_model_names_its_capabilities(
    alice: httpx.Client, lora_files: LoraFiles, text_adapters: TextAdapters
) -> None:
    upload = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.sd15_b.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-sd15", "name": "capabilities"},
    )
    assert upload.status_code == 201, upload.text
    image_adapter = upload.json()["id"]
    models = listed(alice)
    expected = {
        "auto": ["chat"],
        "tiny-llm": ["chat", "completions"],
        text_adapters.alice_a: ["chat", "completions"],
        "tiny-sd15": ["images"],
        "flux.1-dev": ["images"],
        image_adapter: ["images"],
        "router-default": ["classify"],
    }
    assert {model_id: models[model_id]["capabilities"] for model_id in expected} == expected
    assert all(model["capabilities"] for model in models.values())
    assert models["auto"]["kind"] == "auto" and models["auto"]["owned_by"] == "genfoundry"
    assert alice.delete(f"/v1/models/{image_adapter}").status_code == 200


def test_capability_filters_the_list(alice: httpx.Client, text_adapters: TextAdapters) -> None:
    chat = listed(alice, capability="chat")
    assert {"auto", "tiny-llm", text_adapters.alice_a} <= set(chat)
    assert text_adapters.bob not in chat
    assert all("chat" in model["capabilities"] for model in chat.values())
    assert not {"tiny-sd15", "router-default"} & set(chat)
    images = listed(alice, capability="images")
    assert "tiny-sd15" in images and not {"auto", "tiny-llm"} & set(images)
    assert set(listed(alice, capability="classify")) >= {"router-default"}


def test_a_capability_we_do_not_have_is_a_400(live: LiveServer, alice: httpx.Client) -> None:
    for value in ("video", "", "CHAT"):
        assert_error(alice.get("/v1/models", params={"capability": value}), 400, param="capability")
    assert alice.get("/healthz").status_code == 200


def test_auto_is_a_model_but_not_an_editable_one(alice: httpx.Client, alice_openai: openai.OpenAI) -> None:
    auto = alice_openai.models.retrieve("auto")
    assert auto.id == "auto" and (auto.model_extra or {})["capabilities"] == ["chat"]
    chat_ids = [model.id for model in alice_openai.models.list(extra_query={"capability": "chat"})]
    assert "auto" in chat_ids and "tiny-sd15" not in chat_ids
    assert_error(alice.delete("/v1/models/auto"), 400, param="model")
    assert_error(alice.patch("/v1/models/auto", json={"name": "mine"}), 400, param="model")
    assert "auto" in listed(alice)
