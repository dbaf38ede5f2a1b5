"""The LoRA recipe for SD 1.5, SDXL and FLUX: train_lora(config, dataset_dir, output_dir, callbacks)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid
from genfoundry.training import checkpoints
from genfoundry.training.callbacks import TrainingCallbacks, TrainingResult

if TYPE_CHECKING:
    import torch

    from genfoundry.training.config import LoraTrainingConfig
    from genfoundry.training.data import DatasetItem

ADAPTER_DIR = "adapter"
TRAINING_INFO = "training.json"


def train_lora(
    config: LoraTrainingConfig,
    dataset_dir: Path,
    output_dir: Path,
    callbacks: TrainingCallbacks | None = None,
    *,
    resume_from: Path | None = None,
) -> TrainingResult:
    """Train a LoRA on the images and captions in `dataset_dir`; results go under `output_dir`.

    Writes `checkpoints/step_<n>/` every `checkpoint_every_n_steps` (keeping the last K), `samples/*.png`
    for the validation prompts, and finally `adapter/pytorch_lora_weights.safetensors`. When
    `callbacks.should_stop()` turns true the run checkpoints and returns with `stopped=True`; passing that
    checkpoint as `resume_from` continues to the same weights an uninterrupted run reaches.
    """
    run = LoraRun(config, Path(dataset_dir), Path(output_dir), callbacks or TrainingCallbacks(), resume_from)
    return run.train()


def adapter_metadata(
    config: LoraTrainingConfig, step: int, total_steps: int, *, recipe: str = "lora"
) -> dict[str, str]:
    """Header fields of every LoRA file we write (safetensors metadata values are strings)."""
    return {
        "genfoundry_recipe": recipe,
        "genfoundry_family": config.family,
        "genfoundry_base": config.base_source,
        "genfoundry_rank": str(config.rank),
        "genfoundry_alpha": repr(config.alpha),
        "genfoundry_trigger_word": config.trigger_word or "",
        "genfoundry_steps": str(step),
        "genfoundry_total_steps": str(total_steps),
        "genfoundry_target_modules": json.dumps(list(config.target_modules)),
        "genfoundry_resolution": str(config.resolution),
        "genfoundry_seed": str(config.seed),
    }


def micro_step_seed(seed: int, micro_step: int) -> int:
    """The RNG seed of one micro-batch: a hash of (seed, micro step), so resuming replays the same noise."""
    digest = hashlib.blake2b(f"{seed}:{micro_step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class LoraRun:
    """One call of train_lora: set up on construction (inputs checked, base loaded, data encoded, LoRA added,
    checkpoint restored), then `train()` loops. DreamBooth's run subclasses it and replaces the hooks."""

    recipe = "lora"

    def __init__(
        self,
        config: LoraTrainingConfig,
        dataset_dir: Path,
        output_dir: Path,
        callbacks: TrainingCallbacks,
        resume_from: Path | None,
    ) -> None:
        from genfoundry.training import cache, lora_setup, sampling
        from genfoundry.training.data import BatchSchedule, assign_buckets
        from genfoundry.training.steps import family_steps

        self.config, self.output_dir, self.callbacks = config, output_dir, callbacks
        # 1. Check inputs: data, checkpoint and device, before anything heavy is loaded.
        items = self.load_items(dataset_dir)
        groups = assign_buckets(items, config.resolution, bucketing=config.bucketing)
        self.schedule = BatchSchedule(groups, config.batch_size, config.seed)
        self.total_steps = config.total_steps(self.schedule.batches_per_epoch)
        resumed = self.read_checkpoint(Path(resume_from)) if resume_from else None
        self.accelerator, self.dtype = lora_setup.make_accelerator(config)
        device = self.accelerator.device
        output_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.remove_stale_temp_dirs(output_dir)
        callbacks.on_log(
            f"{self.describe()}: {len(items)} images in {len(groups)} buckets, {self.total_steps} steps, "
            f"device {device}, mixed precision {self.accelerator.mixed_precision}"
        )

        # 2. Load the base model.
        began = time.perf_counter()
        self.pipe = lora_setup.load_base_pipeline(config, self.dtype)
        self.steps = family_steps(config, self.pipe)
        self.denoiser = getattr(self.pipe, self.steps.component)
        self.check_denoiser()

        # 3. Encode images and captions once; the encoders then leave before the denoiser needs the memory.
        cache.text_encoders_to(self.pipe, device)
        self.encode_extra_data()
        self.encoded = cache.encode_dataset(self.pipe, self.steps, items, groups, device, callbacks.on_log)
        self.sample_prompts = None
        if config.validation_prompts and config.sample_every_n_steps > 0:
            self.sample_prompts = sampling.encode_sample_prompts(
                self.pipe, self.steps, config.validation_prompts, device
            )
        cache.release_encoders(
            self.pipe, keep_vae=self.sample_prompts is not None, keep_text_encoders=config.train_text_encoder
        )
        callbacks.on_log(
            f"encoded in {time.perf_counter() - began:.1f}s; text encoders released, VAE "
            + ("parked on the CPU for samples" if self.sample_prompts else "released")
        )

        # 4. Trained weights, optimizer and schedule; a checkpoint overrides all three.
        self.make_trainable()
        self.text_encoders = self.train_text_encoders() if config.train_text_encoder else {}
        self.params = [p for p in self.denoiser.parameters() if p.requires_grad]
        self.params += [p for enc in self.text_encoders.values() for p in enc.parameters() if p.requires_grad]
        self.optimizer = lora_setup.make_optimizer(config, self.params, callbacks.on_log)
        self.lr_scheduler = lora_setup.make_lr_scheduler(config, self.optimizer, self.total_steps)
        self.denoiser, self.optimizer = self.accelerator.prepare(self.denoiser, self.optimizer)
        self.start_step = 0
        if resumed is not None:
            self.restore(resumed)
            callbacks.on_log(f"resumed from {Path(str(resume_from)).name} at step {resumed.step}")

    # Hooks a subclass replaces.

    def describe(self) -> str:
        """What the run trains, for its first log line."""
        return f"LoRA {self.config.family}, rank {self.config.rank}"

    def load_items(self, dataset_dir: Path) -> list[DatasetItem]:
        """The training examples: the dataset's images with their captions (trigger word added)."""
        from genfoundry.training.data import load_dataset_items

        return load_dataset_items(dataset_dir, self.config.trigger_word)

    def check_denoiser(self) -> None:
        """Refuse target modules that match no layer of the loaded denoiser."""
        from genfoundry.training import lora_setup

        lora_setup.check_target_modules(self.denoiser, self.config.target_modules)

    def encode_extra_data(self) -> None:
        """Runs while the text encoders and VAE are loaded, before the dataset is encoded."""

    def make_trainable(self) -> None:
        """Freeze the denoiser and add the LoRA layers, which are what trains."""
        from genfoundry.training import lora_setup

        lora_setup.add_lora(self.denoiser, self.config, self.accelerator.device, self.dtype)

    def train_text_encoders(self) -> dict[str, Any]:
        """LoRA on the text encoders; captions are then encoded at every batch, through them."""
        from genfoundry.training import lora_setup

        device = self.accelerator.device
        encoders = {
            name: getattr(self.pipe, name) for name in checkpoints.TEXT_ENCODERS if getattr(self.pipe, name, None)
        }
        for encoder in encoders.values():
            lora_setup.add_text_encoder_lora(encoder, self.config, device)

        def encode(prompts: list[str]) -> dict[str, torch.Tensor]:
            return self.steps.encode_prompts(self.pipe, prompts, device)

        for data in (self.encoded, getattr(self, "class_data", None)):
            if data is not None:
                data.live_text = encode
        return encoders

    def micro_batch_loss(self, micro_step: int, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss to backpropagate for one micro-batch, and the named terms to report (none here)."""
        indices = self.schedule.batch(micro_step)
        latents, cond, extra = self.encoded.batch(indices, generator, self.steps, self.accelerator.device, self.dtype)
        with self.accelerator.autocast():
            loss = self.steps.example_losses(self.denoiser, latents, cond, extra, generator).mean()
        return loss, {}

    def write_weights(self, folder: Path, step: int) -> str:
        """The trained weights into a checkpoint folder; returns their kind for checkpoint.json."""
        self.write_lora(folder, step)
        return checkpoints.WEIGHTS_LORA

    def read_checkpoint(self, path: Path) -> checkpoints.LoadedCheckpoint:
        return checkpoints.load_checkpoint(path, self.config.to_dict())

    def restore_weights(self, resumed: checkpoints.LoadedCheckpoint) -> None:
        """Load a checkpoint's LoRA tensors into the LoRA layers; Invalid when they do not fit."""
        from peft import set_peft_model_state_dict

        model = self.accelerator.unwrap_model(self.denoiser)
        prefixes = tuple(f"{name}." for name in checkpoints.TEXT_ENCODERS)
        own = {k: v for k, v in resumed.weights.items() if not k.startswith(prefixes)}
        result = set_peft_model_state_dict(model, own, adapter_name="default")
        missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
        unexpected = list(getattr(result, "unexpected_keys", []))
        for name in {k.split(".", 1)[0] for k in resumed.weights if k.startswith(prefixes)} - set(self.text_encoders):
            unexpected.append(f"{name}.*")
        for name, encoder in self.text_encoders.items():
            layers = {k.removeprefix(f"{name}."): v for k, v in resumed.weights.items() if k.startswith(f"{name}.")}
            if not layers:
                missing.append(f"{name}.*")
                continue
            result = set_peft_model_state_dict(encoder, layers, adapter_name="default")
            missing += [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
            unexpected += list(getattr(result, "unexpected_keys", []))
        if missing or unexpected:
            raise Invalid(
                f"checkpoint LoRA does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}",
                param="resume_from",
            )

    def save_outputs(self, step: int, losses: list[float]) -> tuple[Path | None, Path | None]:
        """Publish the final weights; returns (adapter file, full model folder)."""
        return self.save_adapter(step, losses), None

    def adapter_metadata(self, step: int) -> dict[str, str]:
        return adapter_metadata(self.config, step, self.total_steps, recipe=self.recipe)

    def training_info(self, step: int, losses: list[float]) -> dict[str, Any]:
        """The summary saved next to the final weights."""
        return {
            "recipe": self.recipe,
            "steps": step,
            "final_loss": losses[-1] if losses else None,
            "config": self.config.to_dict(),
        }

    # The loop and what it shares between recipes.

    def train(self) -> TrainingResult:
        """The loop: optimizer steps, with checkpoints, samples and the stop check at step boundaries."""
        config, callbacks = self.config, self.callbacks
        losses: list[float] = []
        samples: list[Path] = []
        last_checkpoint: Path | None = None
        step = self.start_step
        began = time.perf_counter()
        while step < self.total_steps:
            terms = self.train_step(step)
            loss = terms.pop("loss")
            step += 1
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {step}; lower learning_rate or use bf16")
            losses.append(loss)
            rate = (step - self.start_step) / max(time.perf_counter() - began, 1e-9)
            metrics = {"loss": loss, **terms, "lr": self.current_lr(), "it_per_s": rate}
            callbacks.on_step(step, self.total_steps, metrics)
            saved = False
            if step % config.checkpoint_every_n_steps == 0 or self.ends_saved_epoch(step):
                last_checkpoint, saved = self.checkpoint(step, loss), True
            if self.sample_prompts is not None and step % config.sample_every_n_steps == 0:
                samples += self.sample(step)
            if step < self.total_steps and callbacks.should_stop():
                if not saved:
                    last_checkpoint = self.checkpoint(step, loss)
                callbacks.on_log(f"stopped at step {step} of {self.total_steps}; checkpoint saved")
                return self.result(None, None, step, last_checkpoint, losses, samples, stopped=True)
        if self.sample_prompts is not None and step % config.sample_every_n_steps != 0:
            samples += self.sample(step)  # the final weights always get a sample
        adapter, model = self.save_outputs(step, losses)
        callbacks.on_log(f"finished {step} steps; {'adapter' if adapter else 'model'} at {adapter or model}")
        return self.result(adapter, model, step, last_checkpoint, losses, samples, stopped=False)

    def result(
        self,
        adapter: Path | None,
        model: Path | None,
        step: int,
        last_checkpoint: Path | None,
        losses: list[float],
        samples: list[Path],
        *,
        stopped: bool,
    ) -> TrainingResult:
        return TrainingResult(
            adapter_path=adapter,
            model_path=model,
            step=step,
            total_steps=self.total_steps,
            stopped=stopped,
            last_checkpoint=last_checkpoint,
            losses=losses,
            samples=samples,
        )

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step over `gradient_accumulation_steps` micro-batches; the mean loss and its terms."""
        import torch

        accumulation = self.config.gradient_accumulation_steps
        totals: dict[str, float] = {}
        for k in range(accumulation):
            micro = step * accumulation + k
            generator = torch.Generator().manual_seed(micro_step_seed(self.config.seed, micro))
            loss, terms = self.micro_batch_loss(micro, generator)
            self.accelerator.backward(loss / accumulation)
            for name, value in {"loss": float(loss.detach()), **terms}.items():
                totals[name] = totals.get(name, 0.0) + value
        if self.config.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {name: total / accumulation for name, total in totals.items()}

    def ends_saved_epoch(self, step: int) -> bool:
        """Whether optimizer step `step` completes an epoch that save_every_n_epochs keeps a checkpoint of."""
        every = self.config.save_every_n_epochs
        if not every:
            return False
        per_epoch, accumulation = self.schedule.batches_per_epoch, self.config.gradient_accumulation_steps
        before, after = (step - 1) * accumulation // per_epoch, step * accumulation // per_epoch
        return after // every > before // every

    def current_lr(self) -> float:
        return float(self.lr_scheduler.get_last_lr()[0])

    def write_lora(self, folder: Path, step: int) -> Path:
        """The current LoRA as a diffusers-format file in `folder`."""
        from peft.utils import get_peft_model_state_dict

        model = self.accelerator.unwrap_model(self.denoiser)
        layers = {k: v.detach().to("cpu").contiguous() for k, v in get_peft_model_state_dict(model).items()}
        encoders = {
            name: (
                {k: v.detach().to("cpu").contiguous() for k, v in get_peft_model_state_dict(encoder).items()},
                encoder.peft_config["default"].to_dict(),
            )
            for name, encoder in self.text_encoders.items()
        }
        return checkpoints.save_lora_file(
            folder,
            pipeline_cls=type(self.pipe),
            component=self.steps.component,
            layers=layers,
            peft_config=model.peft_config["default"].to_dict(),
            metadata=self.adapter_metadata(step),
            text_encoders=encoders,
        )

    def checkpoint(self, step: int, loss: float) -> Path:
        """Save weights + optimizer + schedule + RNG state as checkpoints/step_<step>, atomically."""
        import torch

        scaler = self.accelerator.scaler
        state = {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "python": random.getstate(),
            },
        }

        def write(folder: Path) -> None:
            info = {
                "format_version": checkpoints.FORMAT_VERSION,
                "recipe": self.recipe,
                "weights": self.write_weights(folder, step),
                "step": step,
                "total_steps": self.total_steps,
                "loss": loss,
                "config": self.config.to_dict(),
            }
            checkpoints.write_training_state(folder, state, info)

        path = checkpoints.save_checkpoint(
            self.output_dir, step, write=write, keep_last=self.config.keep_last_n_checkpoints
        )
        self.callbacks.on_checkpoint(step, path)
        return path

    def restore(self, resumed: checkpoints.LoadedCheckpoint) -> None:
        """Load a checkpoint's weights, optimizer, schedule and RNG states into this run."""
        import torch

        self.restore_weights(resumed)
        state = resumed.training_state
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if self.accelerator.scaler is not None and state.get("scaler"):
            self.accelerator.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        random.setstate(rng["python"])
        self.start_step = resumed.step

    def sample(self, step: int) -> list[Path]:
        """Generate the validation prompts with the current weights and report each image."""
        from genfoundry.training.sampling import encode_sample_prompts, generate_samples

        assert self.sample_prompts is not None
        if self.text_encoders:  # the prompts' embeddings change as the encoders train
            prompts = self.sample_prompts.prompts
            self.sample_prompts = encode_sample_prompts(self.pipe, self.steps, prompts, self.accelerator.device)
        made = generate_samples(
            self.pipe,
            self.steps,
            self.config,
            self.sample_prompts,
            step=step,
            output_dir=self.output_dir,
            device=self.accelerator.device,
            dtype=self.dtype,
            autocast=self.accelerator.autocast,
        )
        for prompt, path in made:
            self.callbacks.on_sample(step, prompt, path)
        return [path for _prompt, path in made]

    def save_adapter(self, step: int, losses: list[float]) -> Path:
        """Publish the final LoRA as output_dir/adapter/ (replacing an older one atomically)."""
        info = self.training_info(step, losses)

        def write(folder: Path) -> None:
            self.write_lora(folder, step)
            (folder / TRAINING_INFO).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")

        folder = checkpoints.write_dir_atomically(self.output_dir / ADAPTER_DIR, write)
        return folder / checkpoints.LORA_WEIGHT_NAME
