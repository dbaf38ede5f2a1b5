"""Rows joining a running decode: their own prefill's `DynamicCache` appended to the batch's.

The two caches hold different lengths (the batch's prompts and steps so far, the joining rows' prompts); the
shorter is left-padded with zeros that the attention mask hides, as left-padded prompts already are, so every
row's next token still sits at the end and a row attends to exactly its own tokens.
"""

from __future__ import annotations

from typing import Any


def joinable(cache: Any) -> bool:
    """Whether rows can be appended to `cache`: every layer a plain growing one (no sliding window, no
    quantized or offloaded layers, whose state this does not know)."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in cache.layers)


def _pad_left(tensor: Any, width: int, dim: int) -> Any:
    import torch.nn.functional as F

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim % tensor.dim()) + [missing, 0]
    return F.pad(tensor, pad)


def join_caches(cache: Any, mask: Any, other: Any, other_mask: Any) -> Any:
    """Append `other`'s rows (with `other_mask`) to `cache` (with `mask`), in place; returns the joined mask.
    Each mask is (rows, cached length)."""
    import torch

    width = max(mask.shape[-1], other_mask.shape[-1])
    for layer, joining in zip(cache.layers, other.layers, strict=True):
        layer.keys = torch.cat([_pad_left(layer.keys, width, -2), _pad_left(joining.keys, width, -2)])
        layer.values = torch.cat([_pad_left(layer.values, width, -2), _pad_left(joining.values, width, -2)])
    return torch.cat([_pad_left(mask, width, -1), _pad_left(other_mask, width, -1)])
