"""tiny-llm (random Llama + locally trained tokenizer), prompt formats, and text-adapter registration."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from genfoundry.errors import Invalid
from genfoundry.text.formats import (
    PLAIN_TEMPLATE,
    TEXT_FORMAT_FILE,
    TextFormat,
    plain_turns,
    render_chat,
    render_messages,
    render_plain_chat,
    render_prompt,
)

CONVERSATION = [
    {"role": "system", "content": "You write PlantUML."},
    {"role": "user", "content": "A user logs in"},
    {"role": "assistant", "content": "@startuml\nUser -> App: login\n@enduml"},
]


def test_tokenizer_is_real_and_chatml(tiny_llm_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm_dir)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    text = "@startuml\nactor User\nUser -> Server: request\n@enduml"
    ids = tokenizer(text)["input_ids"]
    # A trained BPE: far fewer tokens than bytes, and a lossless round trip.
    assert len(ids) < len(text.encode()) / 2
    assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token_id not in ids and tokenizer.pad_token_id not in ids
    rendered = tokenizer.apply_chat_template(CONVERSATION[1:2], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nA user logs in<|im_end|>\n<|im_start|>assistant\n"
    # Special tokens are single ids, never split into bytes.
    assert len(tokenizer("<|im_start|>")["input_ids"]) == 1


def test_model_loads_and_generates(tiny_llm_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(tiny_llm_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    params = sum(p.numel() for p in model.parameters())
    assert 200_000 < params < 5_000_000
    assert model.config.vocab_size >= len(tokenizer)
    assert model.config.eos_token_id == tokenizer.eos_token_id
    inputs = tokenizer("@startuml", return_tensors="pt")
    with torch.no_grad():
        out: Any = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_build_is_deterministic(tiny_llm_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from genfoundry.models.tiny_llm import build_tiny_llm

    again = build_tiny_llm(tmp_path / "again")
    assert (again / "tokenizer.json").read_bytes() == (tiny_llm_dir / "tokenizer.json").read_bytes()
    first, second = load_file(tiny_llm_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(bool((first[k] == second[k]).all()) for k in first)
    other = build_tiny_llm(tmp_path / "seed1", seed=1)
    assert not bool(
        (
            load_file(other / "model.safetensors")["model.embed_tokens.weight"] == first["model.embed_tokens.weight"]
        ).all()
    )


def test_registered_by_build_tiny(tiny_dir: Path) -> None:
    with (tiny_dir / "registry.toml").open("rb") as handle:
        registry = tomllib.load(handle)
    entry = registry["text_models"]["tiny-llm"]
    assert entry["prompt_format"] == "chat_template"
    assert (tiny_dir / entry["source"] / "config.json").is_file()
    assert "tiny-llm" not in registry["models"]  # the image catalog never sees it


def test_render_chat_and_plain(tiny_llm_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm_dir)
    chat = render_chat(tokenizer, CONVERSATION, chat_template=None, add_generation_prompt=False)
    assert chat.startswith("<|im_start|>system\nYou write PlantUML.<|im_end|>\n")
    assert chat.endswith("<|im_start|>assistant\n@startuml\nUser -> App: login\n@enduml<|im_end|>\n")
    custom = render_chat(
        tokenizer, CONVERSATION[1:2], chat_template="{{ messages[0]['content'] }}!", add_generation_prompt=True
    )
    assert custom == "A user logs in!"

    assert render_prompt("hi") == "### Instruction:\nhi\n\n### Response:\n"
    assert render_prompt("{not a field}", template="Q: {prompt}\nA:") == "Q: {not a field}\nA:"
    assert plain_turns(CONVERSATION) == [("You write PlantUML.\n\nA user logs in", CONVERSATION[2]["content"])]
    plain = render_plain_chat(
        [*CONVERSATION, {"role": "user", "content": "again"}], eos_token="</s>", add_generation_prompt=True
    )
    assert plain == (
        render_prompt("You write PlantUML.\n\nA user logs in")
        + CONVERSATION[2]["content"]
        + "</s>\n\n"
        + render_prompt("again")
    )
    fmt = TextFormat(base_id="phi", prompt_format="plain")
    assert render_messages(fmt, tokenizer, CONVERSATION[1:2], add_generation_prompt=True) == render_prompt(
        "A user logs in"
    )
    with pytest.raises(Invalid) as info:
        render_plain_chat([{"role": "tool", "content": "x"}], eos_token="", add_generation_prompt=True)
    assert info.value.param == "messages"


def test_text_format_round_trip_and_checks(tmp_path: Path) -> None:
    fmt = TextFormat(base_id="tiny-llm", prompt_format="chat_template", chat_template="{{ x }}")
    fmt.write(tmp_path)
    assert json.loads((tmp_path / TEXT_FORMAT_FILE).read_text()) == {
        "base_id": "tiny-llm",
        "prompt_format": "chat_template",
        "chat_template": "{{ x }}",
        "plain_template": PLAIN_TEMPLATE,
    }
    assert TextFormat.read(tmp_path) == fmt
    with pytest.raises(Invalid) as info:
        TextFormat(base_id="x", prompt_format="alpaca")
    assert info.value.param == "prompt_format"
    with pytest.raises(Invalid) as info:
        TextFormat(base_id="x", prompt_format="plain", plain_template="no placeholder")
    assert info.value.param == "plain_template"
    with pytest.raises(Invalid):
        TextFormat.read(tmp_path / "missing")


def test_register_text_adapter(tiny_llm_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from genfoundry.db.session import make_engine, make_session_factory, upgrade_database
    from genfoundry.repo import adapters as adapters_repo
    from genfoundry.repo import users as users_repo
    from genfoundry.services.text_adapters import register_text_adapter
    from genfoundry.storage import ArtifactStore

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llm_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    peft_dir = tmp_path / "peft"
    model.save_pretrained(str(peft_dir))
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        owner = users_repo.create_user(session=session, name="alice").id
        session.commit()
    store = ArtifactStore(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    fmt = TextFormat(base_id="tiny-llm", prompt_format="chat_template", chat_template="{{ messages }}")
    adapter = register_text_adapter(
        sessions=sessions,
        store=store,
        owner_id=owner,
        base_id="tiny-llm",
        name="PlantUML demo",
        peft_dir=peft_dir,
        text_format=fmt,
        tags={"job": "job_1"},
    )
    assert adapter.id.startswith("plantuml-demo-")
    assert (adapter.family, adapter.source_format, adapter.rank, adapter.alpha) == ("text", "peft", 4, 8.0)
    assert adapter.file_key == f"adapters/{adapter.id}/adapter_model.safetensors"
    folder = store.local_path(f"adapters/{adapter.id}")
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        TEXT_FORMAT_FILE,
    ]
    assert TextFormat.read(folder) == fmt
    assert (peft_dir / "adapter_model.safetensors").is_file()  # the source is left in place
    with sessions() as session:
        row = adapters_repo.require_adapter(session=session, owner_id=owner, adapter_id=adapter.id)
        assert row.size_bytes == sum(p.stat().st_size for p in folder.iterdir())

    with pytest.raises(Invalid):  # the format must name the same base
        register_text_adapter(
            sessions=sessions,
            store=store,
            owner_id=owner,
            base_id="other",
            name="x",
            peft_dir=peft_dir,
            text_format=fmt,
            tags={},
        )
    with pytest.raises(Invalid):
        register_text_adapter(
            sessions=sessions,
            store=store,
            owner_id=owner,
            base_id="tiny-llm",
            name="x",
            peft_dir=tmp_path,
            text_format=fmt,
            tags={},
        )
    with sessions() as session:
        assert len(adapters_repo.list_adapters(session=session, owner_id=owner)) == 1
    engine.dispose()
