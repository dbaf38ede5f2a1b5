"""LoRA hotswap for one base: every adapter is swapped into a single LoRA slot of the denoiser, padded to a fixed
rank, so a `torch.compile`d denoiser never recompiles when requests change adapters (image_speed.hotswap_max_rank).

The slot's layers come from the first adapter loaded (diffusers pads them to the maximum rank and turns their scaling
into tensors: `enable_lora_hotswap`); each later adapter's weights are copied into them in
place (`hotswap=True`). A request's adapter weight, and "no adapter", are the slot's scaling tensors multiplied in
place (by the weight, or by 0), which changes no graph either. The converted state dicts of recent adapters stay in
CPU memory, so switching back to one reads no file.

Limits (PEFT's): an adapter may touch only layers the first one touched, with the same LoRA options (dropout, DoRA,
rsLoRA, per-layer alphas), and none of the text encoders'; each is refused with a 400 naming the reason.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genfoundry.errors import Invalid
from genfoundry.inference.loader import MODULE_BUILD_LOCK

if TYPE_CHECKING:
    from genfoundry.inference.image import LoraSpec

logger = logging.getLogger(__name__)

SLOT = "hotswap_slot"
_DOWN_MARKERS = (".lora_A.", ".lora.down.", ".lora_down.")  # the (rank, in) half of a LoRA pair, by key format


@dataclass(frozen=True)
class _Adapter:
    """An adapter as diffusers' pipeline reads it: converted to its own key format, with kohya alphas or the file's
    LoRA config (metadata)."""

    path: str
    state_dict: dict[str, Any]
    network_alphas: dict[str, float] | None
    metadata: dict[str, Any] | None


def adapter_rank(state_dict: dict[str, Any]) -> int:
    """The largest rank among the LoRA pairs of `state_dict` (0 when it holds none)."""
    ranks = [int(v.shape[0]) for k, v in state_dict.items() if any(m in k for m in _DOWN_MARKERS)]
    return max(ranks, default=0)


class HotswapSlot:
    """Switches a base's adapters by hotswapping them into one LoRA slot; runs on the base's worker thread."""

    def __init__(
        self,
        pipe: Any,
        *,
        base_id: str,
        family: str,
        max_rank: int,
        max_cached: int,
        on_evict: Callable[[], None] = lambda: None,
    ) -> None:
        self.pipe = pipe
        self.base_id = base_id
        self.max_rank = max_rank
        self.max_cached = max_cached
        self._on_evict = on_evict
        self._prefix = "transformer" if family == "flux" else "unet"
        self._flux = family == "flux"
        self._cache: OrderedDict[str, _Adapter] = OrderedDict()  # adapter id -> adapter, least recently used first
        self._slot_filled = False  # the slot's layers exist once the first adapter is loaded
        self._current: tuple[str, str, float] | None = None  # (id, path, weight) in the slot; None: none or unknown
        self._muted = True  # the slot applies nothing (empty, or scaled to 0)
        self._empty_slot()

    @property
    def adapter_ids(self) -> tuple[str, ...]:
        """Adapters whose weights are held in memory for swapping."""
        return tuple(self._cache)

    @property
    def _denoiser(self) -> Any:
        return getattr(self.pipe, self._prefix)

    def switch(self, loras: Sequence[LoraSpec]) -> None:
        """Make the slot hold `loras` (at most one) at its weight; no adapter: the slot's scale is 0."""
        if len(loras) > 1:
            raise Invalid(
                "this server swaps one adapter at a time (image_speed.hotswap_max_rank); name one", param="loras"
            )
        if not loras:
            self._mute()
            return
        lora = loras[0]
        wanted = (lora.id, lora.path, float(lora.weight))
        if wanted == self._current:
            self._cache.move_to_end(lora.id)
            return
        adapter = self._cache.get(lora.id)
        if adapter is None or adapter.path != lora.path:
            adapter = self._read(lora)
        self._current, self._muted = None, False  # a swap that fails half-way leaves the slot unknown
        started = time.perf_counter()
        self._load_into_slot(lora.id, adapter)
        if lora.weight != 1.0:
            self._scale_slot(float(lora.weight))
        self._current = wanted
        self._remember(lora.id, adapter)  # only adapters that fit the slot take a place in the cache
        logger.debug("swapped adapter %s into %s in %.4fs", lora.id, self.base_id, time.perf_counter() - started)

    def forget(self, adapter_id: str) -> bool:
        """Drop the adapter's cached weights (it was deleted); if it is in the slot, the slot stops applying it."""
        known = self._cache.pop(adapter_id, None)
        if self._current is not None and self._current[0] == adapter_id:
            self._mute()
        return known is not None

    def _mute(self) -> None:
        if self._slot_filled and not self._muted:
            self._scale_slot(0.0)
        self._current, self._muted = None, True

    def _remember(self, adapter_id: str, adapter: _Adapter) -> None:
        """Cache the adapter as the most recently used, dropping the least recently used past `max_cached`."""
        self._cache.pop(adapter_id, None)
        self._cache[adapter_id] = adapter
        while len(self._cache) > self.max_cached:
            old_id, _ = self._cache.popitem(last=False)
            self._on_evict()
            logger.info(
                "dropped adapter %s's weights from %s's hotswap cache (at most %d)",
                old_id,
                self.base_id,
                self.max_cached,
            )

    def _empty_slot(self) -> None:
        """Before the first adapter: its load then pads the slot to max_rank and makes its scalings tensors. The
        denoiser may already be compiled (pipeline_speed): that load recompiles it once, no later swap does."""
        self.pipe.enable_lora_hotswap(target_rank=self.max_rank, check_compiled="ignore")
        self._slot_filled = False

    def _read(self, lora: LoraSpec) -> _Adapter:
        kwargs: dict[str, Any] = {"return_lora_metadata": True}
        if self._flux:
            kwargs["return_alphas"] = True
        try:
            state_dict, network_alphas, metadata = self.pipe.lora_state_dict(lora.path, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise Invalid(f"cannot read adapter {lora.id!r}: {exc}", param="loras") from exc
        if not state_dict:
            raise Invalid(f"adapter {lora.id!r} holds no LoRA layers", param="loras")
        foreign = sorted({key.split(".", 1)[0] for key in state_dict if not key.startswith(f"{self._prefix}.")})
        if foreign:
            raise Invalid(
                f"adapter {lora.id!r} has layers for {', '.join(foreign)}; hotswap serving "
                f"(image_speed.hotswap_max_rank) swaps only the {self._prefix}'s",
                param="loras",
            )
        rank = adapter_rank(state_dict)
        if rank > self.max_rank:
            raise Invalid(
                f"adapter {lora.id!r} has rank {rank}, above this server's image_speed.hotswap_max_rank "
                f"({self.max_rank})",
                param="loras",
            )
        return _Adapter(lora.path, state_dict, network_alphas or None, metadata)

    def _load_into_slot(self, adapter_id: str, adapter: _Adapter) -> None:
        hotswap = self._slot_filled
        # The first load becomes the slot's own parameters: give it copies, so the later in-place swaps never write
        # into a cached adapter's tensors.
        state_dict = dict(adapter.state_dict) if hotswap else {k: v.clone() for k, v in adapter.state_dict.items()}
        try:
            with MODULE_BUILD_LOCK:
                self._denoiser.load_lora_adapter(
                    state_dict,
                    prefix=self._prefix,
                    network_alphas=adapter.network_alphas,
                    metadata=adapter.metadata,
                    adapter_name=SLOT,
                    hotswap=hotswap,
                    _pipeline=self.pipe,
                )
        except (ValueError, KeyError, RuntimeError) as exc:
            if SLOT not in getattr(self._denoiser, "peft_config", {}):
                # diffusers deletes an adapter whose load failed, the slot included: the next adapter builds it anew
                # (a compiled denoiser then compiles once more).
                logger.warning(
                    "the LoRA slot of %s was lost with adapter %s; the next adapter rebuilds it",
                    self.base_id,
                    adapter_id,
                )
                self._empty_slot()
                self._current, self._muted = None, True
            raise Invalid(
                f"cannot swap adapter {adapter_id!r} into {self.base_id!r}: {exc}. Hotswap serving needs every adapter "
                "to touch only the layers the first one loaded touched, with the same LoRA options",
                param="loras",
            ) from exc
        self._slot_filled = True

    def _scale_slot(self, factor: float) -> None:
        """Multiply the slot's scaling tensors in place (a hotswap resets them to the adapter's alpha / rank)."""
        from peft.tuners.lora import LoraLayer

        for module in self._denoiser.modules():
            if isinstance(module, LoraLayer) and SLOT in module.scaling:
                module.scaling[SLOT].mul_(factor)
