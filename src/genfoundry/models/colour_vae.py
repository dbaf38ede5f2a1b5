"""An AutoencoderKL that preserves colours exactly, by construction (no training).

A tiny random VAE decodes red, blue and grey all to the same grey, so no denoiser could move image colours through
it. Here every block is an identity path (zeroed residual branches, averaging downsamplers, copying upsamplers): the
latent of an image is its RGB averaged over each factor x factor cell (channel 3 stays zero), and decoding repeats
each latent pixel over its cell. Inside, RGB rides in channels 0-2, channel 3 holds -(R+G+B) and channels 4-7 hold
±K, so the single-group GroupNorms before conv_out see fixed statistics and pass the colours through.

The mini models use it (their images are flat colours, which it keeps sharp at factor 2), and so does the learning
test, which needs a base whose colours a LoRA can move.
"""

from __future__ import annotations

import math
from typing import Any

_K = 1000.0  # balanced constant channels: GroupNorm statistics stay independent of the colour
_SHIFT = 12.0  # moves values into SiLU's linear range
_CHANNELS = 8


def _set_centre_taps(conv: Any, taps: list[tuple[int, int, float]], bias: dict[int, float]) -> None:
    conv.weight.zero_()
    conv.bias.zero_()
    k = conv.weight.shape[-1] // 2
    for out_c, in_c, weight in taps:
        conv.weight[out_c, in_c, k, k] = weight
    for channel, value in bias.items():
        conv.bias[channel] = value


def colour_vae(*, factor: int = 8, sample_size: int = 64) -> Any:
    """The colour-preserving AutoencoderKL with a spatial `factor` (2, 4 or 8: one block more per halving)."""
    import torch
    from diffusers import AutoencoderKL

    blocks = int(math.log2(factor)) + 1
    if 2 ** (blocks - 1) != factor:
        raise ValueError(f"factor must be a power of two, got {factor}")
    vae: Any = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(_CHANNELS,) * blocks,
        layers_per_block=1,
        norm_num_groups=1,
        latent_channels=4,
        sample_size=sample_size,
        scaling_factor=1.0,
    )
    identity = [(c, c, 1.0) for c in range(_CHANNELS)]
    feed = [(c, c, 1.0) for c in range(3)] + [(3, c, -1.0) for c in range(3)]
    constants = {4: _K, 5: -_K, 6: _K, 7: -_K}
    unshift = {0: -_SHIFT, 1: -_SHIFT, 2: -_SHIFT}
    with torch.no_grad():
        for module in vae.modules():
            kind = type(module).__name__
            if kind == "ResnetBlock2D":
                module.conv2.weight.zero_()
                module.conv2.bias.zero_()
            elif kind == "Attention":
                module.to_out[0].weight.zero_()
                module.to_out[0].bias.zero_()
            elif kind == "Downsample2D":
                _set_centre_taps(module.conv, [], {})
                for c in range(_CHANNELS):
                    module.conv.weight[c, c, :2, :2] = 0.25
            elif kind == "Upsample2D":
                _set_centre_taps(module.conv, identity, {})
        for coder in (vae.encoder, vae.decoder):
            _set_centre_taps(coder.conv_in, feed, constants)
            coder.conv_norm_out.weight.fill_(math.sqrt(4 * _K * _K / _CHANNELS))
            coder.conv_norm_out.bias.fill_(_SHIFT)
        # Posterior mean = RGB (+ a zero channel); log-variance pinned at its floor: a deterministic encoder.
        _set_centre_taps(vae.encoder.conv_out, identity[:3], {**unshift, 4: -30.0, 5: -30.0, 6: -30.0, 7: -30.0})
        _set_centre_taps(vae.decoder.conv_out, identity[:3], unshift)
        _set_centre_taps(vae.quant_conv, identity, {})
        _set_centre_taps(vae.post_quant_conv, identity[:4], {})
    return vae
