"""mini-llm: `models build-tiny` installs the packaged, pretrained model, it chats through /v1/chat/completions, and
before any fine-tuning it answers a scenario full of made-up names with a whole PlantUML diagram of the type the
scenario asks for. (It does not copy the names yet: docs/mini-models.md.) The bars sit below what the model does
(src/genfoundry/data/mini/llm/MODEL_CARD.md), and greedy decoding of shipped weights is deterministic, so they
cannot flake."""

from __future__ import annotations

import pathlib
from typing import Any

import httpx

from genfoundry.catalog import Catalog
from genfoundry.models import mini_llm

MODEL = "mini-llm"
# Requests in the pretraining's phrasing whose names exist nowhere in the project's text, and a line start only
# their diagram type has.
SCENARIOS = [
    (
        'Draw a sequence diagram of a zorblat delivery. The quimble is an actor. The quimble sends "order vexil" '
        'to the trandor hub. Then the trandor hub replies "vexil sent" to the quimble.',
        "participant ",
    ),
    (
        'Draw a state diagram of a plorb. It starts in Wobbling; Wobbling goes to Zentar on "kick"; from Zentar '
        'it ends on "stop".',
        "[*] --> ",
    ),
    (
        "Draw a component diagram of a frobnix with components Glimmer and Snorkel; database Vortabase. Glimmer "
        "talks to Snorkel over REST. Snorkel talks to Vortabase over SQL.",
        "component ",
    ),
    (
        "Draw a class diagram for a moxie. Blarg has size (int) and can zap(). Fnord has name (String). "
        "A Blarg uses a Fnord.",
        "class ",
    ),
]


def chat(client: httpx.Client, content: str, **extra: Any) -> dict[str, Any]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "temperature": 0, **extra}
    response = client.post("/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_build_tiny_installs_and_registers_mini_llm(tiny_dir: pathlib.Path) -> None:
    entry = Catalog(catalog_file=None, styles_file=None, tiny_dir=tiny_dir).text_models[MODEL]
    assert (entry.prompt_format, entry.dtype) == ("chat_template", "float32")
    folder = pathlib.Path(entry.source)
    assert all((folder / name).is_file() for name in ("model.safetensors", "tokenizer.json", "MODEL_CARD.md"))


def test_installing_again_copies_only_changed_weights(tmp_path: pathlib.Path) -> None:
    target, copied = mini_llm.install(tmp_path)
    assert target is not None and copied
    assert mini_llm.install(tmp_path) == (target, False)
    weights = target / "model.safetensors"
    weights.write_bytes(b"older")  # a copy installed from an older package carries that package's fingerprint
    (target / ".fingerprint").write_text("older")
    assert mini_llm.install(tmp_path) == (target, True)
    assert weights.read_bytes() != b"older"


def test_it_chats_through_the_api(alice: httpx.Client) -> None:
    listed = alice.get("/v1/models")
    assert MODEL in [model["id"] for model in listed.json()["data"]]
    answer = chat(alice, "Hello!", max_tokens=16)
    assert answer["model"] == MODEL and answer["object"] == "chat.completion"
    choice = answer["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length")


def test_pretrained_it_answers_a_scenario_with_a_diagram_of_its_type(alice: httpx.Client) -> None:
    replies = [str(chat(alice, prompt, max_tokens=200)["choices"][0]["message"]["content"]) for prompt, _ in SCENARIOS]
    for reply in replies:
        print(reply, end="\n---\n")
    whole = [reply.strip().startswith("@startuml") and reply.strip().endswith("@enduml") for reply in replies]
    assert sum(whole) >= 3, whole
    typed = [
        any(line.startswith(start) for line in reply.splitlines())
        for reply, (_, start) in zip(replies, SCENARIOS, strict=True)
    ]
    assert sum(typed) >= 3, typed
