"""Random-weight LoRA files for tiny pipelines (test fixtures, benchmarks), saved as a trainer would."""

from __future__ import annotations

from pathlib import Path


def make_lora_file(pipeline_dir: Path, family: str, out_dir: Path, *, seed: int, rank: int = 4) -> Path:
    """A diffusers-format LoRA with random (non-zero) weights for the pipeline at `pipeline_dir`."""
    import torch
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = DiffusionPipeline.from_pretrained(pipeline_dir)
    denoiser = pipe.transformer if family == "flux" else pipe.unet
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    denoiser.add_adapter(config)
    with torch.no_grad():
        for name, param in denoiser.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    layers = get_peft_model_state_dict(denoiser)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = "transformer_lora_layers" if family == "flux" else "unet_lora_layers"
    type(pipe).save_lora_weights(out_dir, **{key: layers}, weight_name="lora.safetensors")
    return out_dir / "lora.safetensors"
