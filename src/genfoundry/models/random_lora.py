"""Random-weight LoRA files for tiny pipelines (test fixtures, benchmarks), saved as a trainer would."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_lora_file(pipeline_dir: Path, family: str, out_dir: Path, *, seed: int, rank: int = 4) -> Path:
    """A diffusers-format LoRA with random (non-zero) weights for the pipeline at `pipeline_dir`."""
    from diffusers import DiffusionPipeline

    return save_random_lora(DiffusionPipeline.from_pretrained(pipeline_dir), family, out_dir, seed=seed, rank=rank)


def save_random_lora(pipe: Any, family: str, out_dir: Path, *, seed: int, rank: int = 4) -> Path:
    """`make_lora_file` for a pipeline in memory (on any device): the LoRA is added to its denoiser as an adapter
    named after `out_dir` and stays there, so save the pipeline itself first."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    denoiser = pipe.transformer if family == "flux" else pipe.unet
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    name = f"random-{out_dir.name}"
    denoiser.add_adapter(config, adapter_name=name)
    with torch.no_grad():
        for param_name, param in denoiser.named_parameters():
            if f"lora_B.{name}." in param_name:
                param.normal_(0, 0.5)
    layers = get_peft_model_state_dict(denoiser, adapter_name=name)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = "transformer_lora_layers" if family == "flux" else "unet_lora_layers"
    type(pipe).save_lora_weights(out_dir, **{key: layers}, weight_name="lora.safetensors")
    return out_dir / "lora.safetensors"


def make_text_lora_dir(model_dir: Path, out_dir: Path, *, seed: int, rank: int = 4, scale: float = 0.5) -> Path:
    """A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) with random non-zero weights on
    every attention and MLP projection of the causal LM at `model_dir`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, config)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_" in name:
                    param.normal_(0, scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out_dir))
    return out_dir
