"""The SFT recipe on tiny-llm: reply-only labels, packing, what it saves, resume, stop, QLoRA, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from genfoundry.errors import Invalid, Unprocessable
from genfoundry.text.formats import PLAIN_TEMPLATE, TextFormat
from genfoundry.training.callbacks import TrainingCallbacks
from genfoundry.training.registry import get_recipe
from genfoundry.training.sft import train_sft
from genfoundry.training.sft_config import SftTrainingConfig
from genfoundry.training.sft_data import (
    IGNORE_INDEX,
    collate,
    pack_examples,
    segments,
    single_unit,
    tokenize_example,
)

REPLY = "@startuml\nA -> B: hi\n@enduml"


@dataclass
class Recorder:
    """Collects every callback; `stop_after` makes should_stop true once that step is done."""

    stop_after: int | None = None
    steps: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def callbacks(self) -> TrainingCallbacks:
        return TrainingCallbacks(
            on_step=lambda step, total, metrics: self.steps.append((step, total, metrics)),
            on_checkpoint=lambda step, path: self.checkpoints.append((step, path)),
            should_stop=lambda: self.stop_after is not None and self.steps[-1][0] >= self.stop_after,
            on_log=self.logs.append,
        )

    @property
    def losses(self) -> list[float]:
        return [m["loss"] for _s, _t, m in self.steps]


@pytest.fixture(scope="module")
def tokenizer(tiny_llm_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llm_dir)


def chat_format() -> TextFormat:
    return TextFormat(base_id="tiny-llm", prompt_format="chat_template")


def trained_text(tokenizer: Any, ids: tuple[int, ...], labels: tuple[int, ...]) -> str:
    return str(tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]))


# 1. Labels: loss on the reply tokens only.


def test_chat_labels_cover_only_the_assistant_replies(tokenizer: Any) -> None:
    record = {
        "messages": [
            {"role": "system", "content": "Answer with PlantUML."},
            {"role": "user", "content": "A greets B"},
            {"role": "assistant", "content": REPLY},
            {"role": "user", "content": "and back"},
            {"role": "assistant", "content": "@startuml\nB -> A: hi\n@enduml"},
        ]
    }
    pieces = segments(record, chat_format(), tokenizer)
    example = tokenize_example(tokenizer, pieces, 512)
    assert example is not None
    assert len(example.input_ids) == len(example.labels)
    # The whole text is the chat template's rendering; only both replies (and their end-of-turn) carry loss.
    assert tokenizer.decode(example.input_ids) == tokenizer.apply_chat_template(record["messages"], tokenize=False)
    assert trained_text(tokenizer, example.input_ids, example.labels) == (
        f"{REPLY}<|im_end|>\n@startuml\nB -> A: hi\n@enduml<|im_end|>\n"
    )
    prompt_ids = tokenizer.apply_chat_template(record["messages"][:2], tokenize=False, add_generation_prompt=True)
    n_prompt = len(tokenizer(prompt_ids, add_special_tokens=False)["input_ids"])
    assert set(example.labels[:n_prompt]) == {IGNORE_INDEX}
    assert example.labels[n_prompt] != IGNORE_INDEX


def test_plain_labels_cover_completion_and_eos(tokenizer: Any) -> None:
    fmt = TextFormat(base_id="phi", prompt_format="plain")
    example = tokenize_example(tokenizer, segments({"prompt": "A greets B", "completion": REPLY}, fmt, tokenizer), 512)
    assert example is not None
    assert (
        tokenizer.decode(example.input_ids) == PLAIN_TEMPLATE.replace("{prompt}", "A greets B") + REPLY + "<|im_end|>"
    )
    assert trained_text(tokenizer, example.input_ids, example.labels) == REPLY + "<|im_end|>"


def test_truncation_keeps_what_fits_and_drops_replyless_examples(tokenizer: Any) -> None:
    pieces = segments({"prompt": "A greets B", "completion": REPLY}, chat_format(), tokenizer)
    full = tokenize_example(tokenizer, pieces, 512)
    assert full is not None
    prompt_len = next(i for i, label in enumerate(full.labels) if label != IGNORE_INDEX)
    cut = tokenize_example(tokenizer, pieces, prompt_len + 2)
    assert cut is not None and len(cut.input_ids) == prompt_len + 2 and cut.trained_tokens == 2
    assert tokenize_example(tokenizer, pieces, prompt_len) is None


def test_packed_rows_give_the_same_loss_as_separate_examples(tiny_llm_dir: Path, tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(tiny_llm_dir).eval()
    records = [
        {"prompt": f"{a} greets {b}", "completion": f"@startuml\n{a} -> {b}: hi\n@enduml"}
        for a, b in [("A", "B"), ("Client", "Server"), ("User", "Database and the Cache")]
    ]
    examples = [tokenize_example(tokenizer, segments(r, chat_format(), tokenizer), 512) for r in records]
    assert all(e is not None for e in examples)
    real = [e for e in examples if e is not None]
    packed = pack_examples(real, 512)
    assert len(packed) == 1 and packed[0].position_ids.count(0) == 3

    def loss_sum(batch: dict[str, torch.Tensor]) -> float:
        labels = batch.pop("labels")[:, 1:]
        # No cache: with one, transformers would not read restarting positions as packed sequences.
        with torch.no_grad():
            logits = model(**batch, use_cache=False).logits[:, :-1]
        return float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="sum"))

    separate = sum(loss_sum(collate([single_unit(e)], 0, packed=False)) for e in real)
    together = loss_sum(collate(packed, 0, packed=True))
    # Positions restart per example, so transformers masks attention across examples: the same loss.
    assert together == pytest.approx(separate, rel=1e-5)
    # Padding rows keep the loss too: a packed batch of two rows of different lengths.
    two_rows = pack_examples(real, max(len(e.input_ids) for e in real) + 1)
    assert len(two_rows) >= 2
    assert loss_sum(collate(two_rows, 0, packed=True)) == pytest.approx(separate, rel=1e-5)


# 2. A run: what it saves and reports.


def small_config(tiny_llm_dir: Path, **overrides: Any) -> SftTrainingConfig:
    fields: dict[str, Any] = {
        "base_source": str(tiny_llm_dir),
        "base_id": "tiny-llm",
        "max_steps": 6,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "rank": 8,
        "validation_fraction": 0.25,
        "eval_every_n_steps": 3,
        "checkpoint_every_n_steps": 3,
        "max_seq_length": 128,
    }
    return SftTrainingConfig(**{**fields, **overrides})


@dataclass
class Reference:
    recorder: Recorder
    output: Path
    result: Any


@pytest.fixture(scope="module")
def finished(tiny_llm_dir: Path, pairs_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    recorder = Recorder()
    output = tmp_path_factory.mktemp("sft-run")
    recipe = get_recipe("sft")  # found by name, as jobs find their recipe
    result = recipe(small_config(tiny_llm_dir), pairs_file, output, recorder.callbacks())
    return Reference(recorder, output, result)


def test_run_saves_a_peft_adapter_with_its_prompt_format(finished: Reference, tokenizer: Any) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = finished.result
    assert (result.step, result.total_steps, result.stopped) == (6, 6, False)
    adapter = finished.output / "adapter"
    assert result.adapter_path == adapter
    assert sorted(p.name for p in adapter.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "genfoundry_text.json",
        "training.json",
    ]
    fmt = TextFormat.read(adapter)
    assert (fmt.base_id, fmt.prompt_format) == ("tiny-llm", "chat_template")
    assert fmt.chat_template == tokenizer.chat_template  # the template trained with, stored for serving
    peft_config = json.loads((adapter / "adapter_config.json").read_text())
    assert (peft_config["r"], peft_config["lora_alpha"], peft_config["task_type"]) == (8, 16, "CAUSAL_LM")
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)
    assert any(float(v.abs().sum()) > 0 for k, v in weights.items() if "lora_B" in k)  # B starts at zero
    # It loads back through PEFT onto the base, as serving does.
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(peft_config["base_model_name_or_path"]), adapter
    )
    assert model.active_adapter == "default"
    info = json.loads((adapter / "training.json").read_text())
    assert info["recipe"] == "sft" and info["examples"] == 18 and set(info["eval"]) == {"eval_loss", "token_accuracy"}


def test_run_reports_losses_eval_metrics_and_checkpoints(finished: Reference) -> None:
    steps = finished.recorder.steps
    assert [s for s, _t, _m in steps] == [1, 2, 3, 4, 5, 6]
    assert all({"loss", "lr", "it_per_s", "tokens_per_s"} <= set(m) for _s, _t, m in steps)
    evals = [(s, m) for s, _t, m in steps if "eval_loss" in m]
    assert [s for s, _m in evals] == [3, 6]
    assert all(0.0 <= m["token_accuracy"] <= 1.0 for _s, m in evals)
    assert evals[-1][1]["eval_loss"] < evals[0][1]["eval_loss"]  # it learns
    assert finished.recorder.losses[-1] < finished.recorder.losses[0]
    assert [s for s, _p in finished.recorder.checkpoints] == [3, 6]
    for _step, path in finished.recorder.checkpoints:  # every checkpoint is a complete adapter
        assert TextFormat.read(path).base_id == "tiny-llm"
        assert (path / "adapter_model.safetensors").is_file() and (path / "training_state.pt").is_file()
    assert any("18 training and 6 validation examples" in line for line in finished.recorder.logs)


def test_an_unknown_recipe_name_lists_the_known_ones() -> None:
    # The runs above reached the SFT trainer through get_recipe("sft"); a misspelt name is a clear 400.
    with pytest.raises(Invalid) as info:
        get_recipe("sfft")
    assert info.value.param == "method"
    assert info.value.message.startswith("unknown training method 'sfft'; known: ")
    assert "sft" in info.value.message.split("known: ")[1].split(", ")


# 3. Stop and resume: the resumed run ends with the uninterrupted run's weights.


def resume_config(tiny_llm_dir: Path) -> SftTrainingConfig:
    # Dropout, accumulation, warmup + cosine and several epochs: every piece of state a resume must restore.
    return small_config(
        tiny_llm_dir,
        max_steps=8,
        batch_size=3,
        gradient_accumulation_steps=2,
        lora_dropout=0.2,
        lr_scheduler="cosine",
        lr_warmup_steps=2,
        checkpoint_every_n_steps=4,
        eval_every_n_steps=0,
    )


def test_stop_then_resume_matches_an_uninterrupted_run(tiny_llm_dir: Path, pairs_file: Path, tmp_path: Path) -> None:
    config = resume_config(tiny_llm_dir)
    whole = Recorder()
    reference = train_sft(config, pairs_file, tmp_path / "whole", whole.callbacks())

    stopper = Recorder(stop_after=3)
    stopped = train_sft(config, pairs_file, tmp_path / "parts", stopper.callbacks())
    assert stopped.stopped and stopped.adapter_path is None and stopped.step == 3
    assert stopped.last_checkpoint == tmp_path / "parts" / "checkpoints" / "step_3"
    assert not (tmp_path / "parts" / "adapter").exists()

    resumed = Recorder()
    result = train_sft(config, pairs_file, tmp_path / "parts", resumed.callbacks(), resume_from=stopped.last_checkpoint)
    assert [s for s, _t, _m in resumed.steps] == [4, 5, 6, 7, 8]
    assert resumed.losses == pytest.approx(whole.losses[3:], abs=1e-6)
    assert [m["lr"] for _s, _t, m in resumed.steps] == pytest.approx([m["lr"] for _s, _t, m in whole.steps[3:]])
    assert result.adapter_path is not None and reference.adapter_path is not None
    first = load_file(reference.adapter_path / "adapter_model.safetensors")
    second = load_file(result.adapter_path / "adapter_model.safetensors")
    assert first.keys() == second.keys()
    worst = max(float((first[k] - second[k]).abs().max()) for k in first)
    assert worst < 1e-6


def test_resume_refuses_a_checkpoint_of_another_run(
    tiny_llm_dir: Path, pairs_file: Path, tmp_path: Path, make_pairs: Callable[..., Path]
) -> None:
    config = small_config(tiny_llm_dir, max_steps=2, checkpoint_every_n_steps=2, validation_fraction=0.0)
    result = train_sft(config, pairs_file, tmp_path / "a")
    assert result.last_checkpoint is not None
    other_rank = small_config(tiny_llm_dir, max_steps=4, rank=4, validation_fraction=0.0)
    with pytest.raises(Invalid) as info:
        train_sft(other_rank, pairs_file, tmp_path / "b", resume_from=result.last_checkpoint)
    assert info.value.param == "resume_from" and "rank" in info.value.message
    other_data = make_pairs(tmp_path / "other.jsonl", 10, start=100)
    with pytest.raises(Invalid) as info:
        train_sft(config, other_data, tmp_path / "c", resume_from=result.last_checkpoint)
    assert info.value.param == "resume_from" and "other data" in info.value.message
    with pytest.raises(Invalid) as info:
        train_sft(config, pairs_file, tmp_path / "d", resume_from=tmp_path)
    assert info.value.param == "resume_from"


# 4. Formats, packing, QLoRA.


def test_chat_dataset_packed_with_a_validation_file(
    tiny_llm_dir: Path, tmp_path: Path, make_pairs: Callable[..., Path]
) -> None:
    train = make_pairs(tmp_path / "chat.jsonl", 12, chat=True)
    validation = make_pairs(tmp_path / "val.jsonl", 3, chat=True, start=50)
    recorder = Recorder()
    config = small_config(tiny_llm_dir, max_steps=2, packing=True, validation_fraction=0.0, max_seq_length=256)
    result = train_sft(config, train, tmp_path / "out", recorder.callbacks(), validation_path=validation)
    assert result.adapter_path is not None
    assert any("12 training and 3 validation examples packed into" in line for line in recorder.logs)
    assert "eval_loss" in recorder.steps[-1][2]


def test_plain_format_for_base_models(tiny_llm_dir: Path, pairs_file: Path, tmp_path: Path) -> None:
    config = small_config(tiny_llm_dir, max_steps=1, prompt_format="plain", validation_fraction=0.0)
    result = train_sft(config, pairs_file, tmp_path)
    assert result.adapter_path is not None
    fmt = TextFormat.read(result.adapter_path)
    assert (fmt.prompt_format, fmt.chat_template, fmt.plain_template) == ("plain", None, PLAIN_TEMPLATE)


def test_qlora_trains_over_a_4bit_nf4_base(tiny_llm_dir: Path, pairs_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    from genfoundry.training.sft_model import add_lora, load_base_model

    config = small_config(tiny_llm_dir, max_steps=2, quantization="4bit", validation_fraction=0.2)
    base = load_base_model(config, torch.device("cpu"), torch.float32)
    layer = base.model.layers[0].mlp.down_proj
    assert type(layer).__name__ == "Linear4bit" and layer.weight.quant_state.quant_type == "nf4"
    assert type(add_lora(base, config).base_model.model.model.layers[0].mlp.down_proj).__name__ == "Linear4bit"
    recorder = Recorder()
    result = train_sft(config, pairs_file, tmp_path, recorder.callbacks())
    assert result.adapter_path is not None and "eval_loss" in recorder.steps[-1][2]
    assert any("4-bit NF4 base (QLoRA)" in line for line in recorder.logs)
    peft_config = json.loads((result.adapter_path / "adapter_config.json").read_text())
    assert peft_config["r"] == 8


def test_qlora_without_bitsandbytes_is_a_clear_400(
    tiny_llm_dir: Path, pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    with pytest.raises(Invalid) as info:
        train_sft(small_config(tiny_llm_dir, quantization="4bit"), pairs_file, tmp_path)
    assert info.value.param == "quantization" and "bitsandbytes" in info.value.message


# 5. Bad input names the field.


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"learning_rat": 1e-4}, "learning_rat"),
        ({"rank": 0}, "rank"),
        ({"rank": "16"}, "rank"),
        ({"alpha": -1}, "alpha"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
        ({"quantization": "8bit"}, "quantization"),
        ({"max_seq_length": 4}, "max_seq_length"),
        ({"packing": "yes"}, "packing"),
        ({"validation_fraction": 0.9}, "validation_fraction"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"n_epochs": 2, "max_steps": 10}, "n_epochs"),
        ({"target_modules": []}, "target_modules"),
        ({"target_modules": ["all-linear", "q_proj"]}, "target_modules"),
        ({"eval_every_n_steps": -1}, "eval_every_n_steps"),
        ({"epochs": 2}, "epochs"),  # OpenAI's name is n_epochs
    ],
)
def test_bad_hyperparameters_name_the_field(params: dict[str, Any], field_name: str) -> None:
    with pytest.raises(Invalid) as info:
        SftTrainingConfig.from_params("some/model", params)
    assert info.value.param == field_name


def test_bad_data_and_modules_name_the_field(tiny_llm_dir: Path, pairs_file: Path, tmp_path: Path) -> None:
    with pytest.raises(Invalid) as info:
        train_sft(small_config(tiny_llm_dir, target_modules=("q_proj", "nope_proj")), pairs_file, tmp_path / "a")
    assert info.value.param == "target_modules" and "nope_proj" in info.value.message
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "draw a cat", "label": "image"}\n')
    with pytest.raises(Invalid) as info:
        train_sft(small_config(tiny_llm_dir), labels, tmp_path / "b")
    assert info.value.param == "training_file"
    no_completion = tmp_path / "broken.jsonl"
    no_completion.write_text('{"prompt": "a cat"}\n')
    with pytest.raises(Unprocessable) as err:
        train_sft(small_config(tiny_llm_dir), no_completion, tmp_path / "c")
    assert "completion" in err.value.message
    with pytest.raises(Invalid) as info:  # every reply lies past max_seq_length
        train_sft(small_config(tiny_llm_dir, max_seq_length=16), pairs_file, tmp_path / "d")
    assert info.value.param == "max_seq_length"
    with pytest.raises(Invalid) as info:
        train_sft(
            small_config(tiny_llm_dir, prompt_format="chat_template", chat_template="{{ nonsense }"),
            pairs_file,
            tmp_path / "e",
        )
    assert info.value.param in ("chat_template", "training_file")
