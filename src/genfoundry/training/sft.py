"""The SFT recipe: LoRA or QLoRA (4-bit NF4) on a causal LM, loss on the reply tokens only.

train_sft(config, dataset_path, output_dir, callbacks) trains on a JSONL file of {"prompt", "completion"} or
{"messages": [...]} lines, rendered with the tokenizer's chat template (chat models) or PLAIN_TEMPLATE (base
models). The loop is a small one over transformers + PEFT rather than TRL's SFTTrainer, so resuming from one of
our checkpoints replays exactly the batches and dropout an uninterrupted run sees, and our callbacks report.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from genfoundry.errors import Invalid
from genfoundry.text.formats import TextFormat
from genfoundry.training import checkpoints
from genfoundry.training.callbacks import TrainingCallbacks, TrainingResult
from genfoundry.training.lora import micro_step_seed
from genfoundry.training.sft_config import RESUME_FIELDS, SftTrainingConfig
from genfoundry.training.sft_data import (
    IGNORE_INDEX,
    BatchSchedule,
    TrainingUnit,
    collate,
    file_digest,
    pack_examples,
    read_records,
    single_unit,
    split_records,
    tokenize_records,
)
from genfoundry.training.sft_model import (
    add_lora,
    check_target_modules,
    load_base_model,
    load_tokenizer,
    resolve_device,
)

if TYPE_CHECKING:
    import torch

ADAPTER_DIR = "adapter"
TRAINING_INFO = "training.json"
RECIPE = "sft"
# PEFT writes a model card next to the adapter; it names local paths and nothing reads it back.
_PEFT_MODEL_CARD = "README.md"


def train_sft(
    config: SftTrainingConfig,
    dataset_path: Path,
    output_dir: Path,
    callbacks: TrainingCallbacks | None = None,
    *,
    resume_from: Path | None = None,
    validation_path: Path | None = None,
) -> TrainingResult:
    """Train a LoRA on `dataset_path` (validation: `validation_path`, or `config.validation_fraction` of it).

    Writes `checkpoints/step_<n>/` every `checkpoint_every_n_steps` (keeping the last K) and finally `adapter/`:
    PEFT's adapter_config.json and adapter_model.safetensors plus genfoundry_text.json (the prompt format) and
    training.json. Each checkpoint folder is a complete adapter too. `on_step` metrics carry loss, lr, it_per_s
    and tokens_per_s, plus eval_loss and token_accuracy at evaluation steps. When `should_stop()` turns true the
    run checkpoints and returns `stopped=True`; that checkpoint as `resume_from` reaches the same weights an
    uninterrupted run does.
    """
    run = SftRun(
        config,
        Path(dataset_path),
        Path(output_dir),
        callbacks or TrainingCallbacks(),
        Path(resume_from) if resume_from else None,
        Path(validation_path) if validation_path else None,
    )
    return run.train()


class SftRun:
    """One call of train_sft: set up on construction (inputs checked, data tokenized, model loaded, LoRA added,
    checkpoint restored), then `train()` loops."""

    def __init__(
        self,
        config: SftTrainingConfig,
        dataset_path: Path,
        output_dir: Path,
        callbacks: TrainingCallbacks,
        resume_from: Path | None,
        validation_path: Path | None,
    ) -> None:
        import torch

        self.config, self.output_dir, self.callbacks = config, output_dir, callbacks
        # 1. Check inputs: the data, the checkpoint and the device, before anything heavy is loaded.
        records = read_records(dataset_path)
        if validation_path is not None:
            train_records, eval_records = records, read_records(validation_path, param="validation_file")
        else:
            train_records, eval_records = split_records(records, config.validation_fraction, config.seed)
        self.data_digest = {"train": file_digest(dataset_path), "validation": file_digest(validation_path)}
        resumed = self.read_checkpoint(resume_from) if resume_from else None
        self.device, self.dtype = resolve_device(config)

        # 2. The tokenizer and the prompt format the adapter will carry.
        tokenizer = load_tokenizer(config)
        chat_template = None
        if config.prompt_format == "chat_template":
            chat_template = config.chat_template or getattr(tokenizer, "chat_template", None)
            if not chat_template:
                raise Invalid(
                    f"{config.base_id} has no chat template; give chat_template or train it with the plain format",
                    param="model",
                )
        self.text_format = TextFormat(
            base_id=str(config.base_id),
            prompt_format=config.prompt_format,
            chat_template=chat_template,
            plain_template=config.plain_template,
        )
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad_id) if pad_id is not None else 0

        # 3. Tokenize once: labels only on the replies; pack when asked.
        train_examples, dropped = tokenize_records(train_records, self.text_format, tokenizer, config.max_seq_length)
        eval_examples, eval_dropped = tokenize_records(eval_records, self.text_format, tokenizer, config.max_seq_length)
        if not train_examples:
            raise Invalid(
                f"no example keeps a reply token within max_seq_length {config.max_seq_length}",
                param="max_seq_length",
            )
        if eval_records and not eval_examples:
            raise Invalid("no validation example keeps a reply token within max_seq_length", param="max_seq_length")
        units = (
            pack_examples(train_examples, config.max_seq_length)
            if config.packing
            else [single_unit(e) for e in train_examples]
        )
        self.schedule = BatchSchedule(units, config.batch_size, config.seed)
        self.eval_units = [single_unit(e) for e in eval_examples]
        self.total_steps = config.total_steps(self.schedule.batches_per_epoch)
        self.examples = len(train_examples)
        note = f"; {dropped + eval_dropped} dropped (reply past max_seq_length)" if dropped + eval_dropped else ""
        callbacks.on_log(
            f"SFT LoRA rank {config.rank}{', 4-bit NF4 base (QLoRA)' if config.quantization == '4bit' else ''}: "
            f"{len(train_examples)} training and {len(eval_examples)} validation examples"
            f"{f' packed into {len(units)} rows' if config.packing else ''}{note}, {self.total_steps} steps, "
            f"device {self.device}, {str(self.dtype).removeprefix('torch.')}, {self.text_format.prompt_format} format"
        )

        # 4. The base model with the LoRA layers, which are all that trains.
        began = time.perf_counter()
        base = load_base_model(config, self.device, self.dtype)
        check_target_modules(base, config)
        self.model = add_lora(base, config)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        for param in self.params:  # LoRA weights train in float32 even over a half-precision base
            param.data = param.data.float()
        trainable = sum(p.numel() for p in self.params)
        callbacks.on_log(f"loaded in {time.perf_counter() - began:.1f}s; {trainable:,} trainable parameters")

        # 5. Optimizer and schedule; a checkpoint overrides both and the LoRA weights.
        from transformers import get_scheduler

        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.lr_scheduler = get_scheduler(
            config.lr_scheduler,
            optimizer=self.optimizer,
            num_warmup_steps=config.lr_warmup_steps,
            num_training_steps=self.total_steps,
        )
        self.start_step = 0
        self.last_eval: dict[str, float] = {}
        if resumed is not None:
            self.restore(resumed)
            callbacks.on_log(f"resumed from {resumed.name} at step {self.start_step}")

    # Checkpoints.

    def read_checkpoint(self, path: Path) -> Path:
        """Check a checkpoint folder belongs to a run this one continues; returns it."""
        folder = Path(path)
        info_file = folder / checkpoints.INFO_FILE
        needed = (checkpoints.STATE_FILE, "adapter_model.safetensors", "adapter_config.json")
        if not info_file.is_file() or not all((folder / name).is_file() for name in needed):
            raise Invalid(f"{folder} is not a complete SFT checkpoint", param="resume_from")
        info = json.loads(info_file.read_text(encoding="utf-8"))
        if info.get("format_version") != checkpoints.FORMAT_VERSION or info.get("recipe") != RECIPE:
            raise Invalid(f"{folder} is not an SFT checkpoint of this version", param="resume_from")
        saved, current = info.get("config", {}), self.config.to_dict()
        for name in RESUME_FIELDS:
            if saved.get(name) != current.get(name):
                raise Invalid(
                    f"checkpoint {folder.name} was trained with {name}={saved.get(name)!r}, this run has "
                    f"{current.get(name)!r}",
                    param="resume_from",
                )
        if info.get("data") != self.data_digest:
            raise Invalid(f"checkpoint {folder.name} was trained on other data", param="resume_from")
        return folder

    def restore(self, folder: Path) -> None:
        """Load a checkpoint's LoRA weights, optimizer and schedule into this run."""
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(folder / "adapter_model.safetensors")
        result = set_peft_model_state_dict(self.model, weights)
        missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
        unexpected = list(getattr(result, "unexpected_keys", []))
        if missing or unexpected:
            raise Invalid(
                f"checkpoint LoRA does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}",
                param="resume_from",
            )
        # weights_only: a checkpoint is data; it must never be able to run code when loaded.
        state = torch.load(folder / checkpoints.STATE_FILE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.start_step = int(state["step"])

    def write_adapter(self, folder: Path) -> None:
        """PEFT's two files and the prompt format: a folder register_text_adapter and serving take as it is."""
        self.model.save_pretrained(str(folder))
        (folder / _PEFT_MODEL_CARD).unlink(missing_ok=True)
        self.text_format.write(folder)

    def checkpoint(self, step: int, loss: float) -> Path:
        """Adapter + optimizer + schedule as checkpoints/step_<step>, atomically."""
        state = {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
        }

        def write(folder: Path) -> None:
            self.write_adapter(folder)
            info = {
                "format_version": checkpoints.FORMAT_VERSION,
                "recipe": RECIPE,
                "step": step,
                "total_steps": self.total_steps,
                "loss": loss,
                "eval": self.last_eval,
                "config": self.config.to_dict(),
                "data": self.data_digest,
            }
            checkpoints.write_training_state(folder, state, info)

        path = checkpoints.save_checkpoint(
            self.output_dir, step, write=write, keep_last=self.config.keep_last_n_checkpoints
        )
        self.callbacks.on_checkpoint(step, path)
        return path

    # The loop.

    def train(self) -> TrainingResult:
        import torch

        self.output_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.remove_stale_temp_dirs(self.output_dir)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # dropout is seeded per micro-batch; the caller's RNG is kept
            return self._train()

    def _train(self) -> TrainingResult:
        config, callbacks = self.config, self.callbacks
        losses: list[float] = []
        last_checkpoint: Path | None = None
        step = self.start_step
        tokens = 0
        began = time.perf_counter()
        while step < self.total_steps:
            loss, step_tokens = self.train_step(step)
            step += 1
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {step}; lower learning_rate")
            losses.append(loss)
            tokens += step_tokens
            elapsed = max(time.perf_counter() - began, 1e-9)
            metrics = {
                "loss": loss,
                "lr": float(self.lr_scheduler.get_last_lr()[0]),
                "it_per_s": (step - self.start_step) / elapsed,
                "tokens_per_s": tokens / elapsed,
            }
            interval = config.eval_interval
            if self.eval_units and (step == self.total_steps or (interval and step % interval == 0)):
                self.last_eval = self.evaluate()
                metrics.update(self.last_eval)
            callbacks.on_step(step, self.total_steps, metrics)
            saved = False
            if step % config.checkpoint_every_n_steps == 0:
                last_checkpoint, saved = self.checkpoint(step, loss), True
            if step < self.total_steps and callbacks.should_stop():
                if not saved:
                    last_checkpoint = self.checkpoint(step, loss)
                callbacks.on_log(f"stopped at step {step} of {self.total_steps}; checkpoint saved")
                return self.result(None, step, last_checkpoint, losses, stopped=True)
        adapter = self.save_adapter(step, losses)
        callbacks.on_log(f"finished {step} steps; adapter at {adapter}")
        return self.result(adapter, step, last_checkpoint, losses, stopped=False)

    def result(
        self, adapter: Path | None, step: int, last_checkpoint: Path | None, losses: list[float], *, stopped: bool
    ) -> TrainingResult:
        return TrainingResult(
            adapter_path=adapter,
            step=step,
            total_steps=self.total_steps,
            stopped=stopped,
            last_checkpoint=last_checkpoint,
            losses=losses,
        )

    def train_step(self, step: int) -> tuple[float, int]:
        """One optimizer step over `gradient_accumulation_steps` micro-batches: the loss (mean over every reply
        token of the step, so short and long examples weigh per token) and the tokens seen."""
        import torch

        accumulation = self.config.gradient_accumulation_steps
        micro_steps = [step * accumulation + k for k in range(accumulation)]
        rows = [self.schedule.batch(micro) for micro in micro_steps]
        batches = [collate(units, self.pad_id, packed=self.config.packing) for units in rows]
        trained = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
        total = 0.0
        for micro, batch in zip(micro_steps, batches, strict=True):
            torch.manual_seed(micro_step_seed(self.config.seed, micro))  # LoRA dropout
            loss_sum, _count, _correct = self.forward(batch)
            (loss_sum / trained).backward()
            total += float(loss_sum.detach())
        seen = sum(len(unit.input_ids) for units in rows for unit in units)
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / trained, seen

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, int]:
        """(summed cross-entropy over reply tokens, their count, how many the argmax gets right)."""
        import torch.nn.functional as F

        inputs = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
        labels = batch["labels"][:, 1:].to(self.device)
        logits = self.model(**inputs, use_cache=False).logits[:, :-1].float()
        loss_sum = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        mask = labels != IGNORE_INDEX
        correct = int(((logits.argmax(-1) == labels) & mask).sum())
        return loss_sum, int(mask.sum()), correct

    def evaluate(self) -> dict[str, float]:
        """Loss and token accuracy over every reply token of the validation examples, dropout off."""
        import torch

        size = self.config.batch_size
        loss_total, count_total, correct_total = 0.0, 0, 0
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(self.eval_units), size):
                    units: list[TrainingUnit] = self.eval_units[start : start + size]
                    loss_sum, count, correct = self.forward(collate(units, self.pad_id, packed=False))
                    loss_total += float(loss_sum)
                    count_total += count
                    correct_total += correct
        finally:
            self.model.train()
        return {"eval_loss": loss_total / count_total, "token_accuracy": correct_total / count_total}

    def save_adapter(self, step: int, losses: list[float]) -> Path:
        """Publish the final adapter as output_dir/adapter/ (replacing an older one atomically)."""
        info = {
            "recipe": RECIPE,
            "steps": step,
            "final_loss": losses[-1] if losses else None,
            "eval": self.last_eval,
            "examples": self.examples,
            "config": self.config.to_dict(),
        }

        def write(folder: Path) -> None:
            self.write_adapter(folder)
            (folder / TRAINING_INFO).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")

        return checkpoints.write_dir_atomically(self.output_dir / ADAPTER_DIR, write)
