"""Next tokens for every live row of a decoding batch in one pass on the model's device.

Each row samples with its own temperature, top-p and seeded `torch.Generator`; greedy rows (temperature 0)
take the argmax. The batch is warped as one tensor; only the noise is drawn per row, from the row's own
generator, so a row's tokens depend on its seed and its logits alone, never on what shares the batch.

A draw takes one uniform number from the row's generator and finds where it falls in the row's cumulative
probabilities (inverse transform). One number per row and step is what makes a seed cost little: drawing a
vocabulary's worth of noise per row (as `torch.multinomial` does for one sample) cost more than a third of a
tiny-llm decode step on a CPU. Nothing here reads a value back to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genfoundry.inference.text_decoding import RowState


def _top_p_filter(scores: Any, threshold: Any) -> Any:
    """Mask the tokens outside each row's nucleus: those whose cumulative probability, counted from the least
    likely, stays at or below the row's `1 - top_p` (the most likely token always stays)."""
    sorted_scores, order = scores.sort(dim=-1)
    remove = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= threshold
    remove[:, -1] = False
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))


class BatchSampler:
    """Picks each live row's next token from its logits; `select` follows the rows the batch keeps."""

    def __init__(self, rows: Sequence[RowState], device: Any) -> None:
        import torch

        self._device = device
        self._generators: list[Any] = []
        self._temperature: list[float] = []
        self._threshold: list[float] = []
        self._rows = len(rows)  # live rows, greedy ones included
        self._sampled: list[int] = []  # positions in the live batch of the rows that sample
        for position, row in enumerate(rows):
            if row.temperature <= 0:
                continue
            self._sampled.append(position)
            self._generators.append(torch.Generator(device=device).manual_seed(row.seed % 2**64))
            self._temperature.append(row.temperature)
            # 1 - top_p in double then float32, as a scalar comparison makes it; -1 filters nothing.
            self._threshold.append(1.0 - row.top_p if row.top_p < 1.0 else -1.0)
        self._tensors()

    def _tensors(self) -> None:
        import torch

        self._index = torch.tensor(self._sampled, dtype=torch.long, device=self._device)
        temperature = torch.tensor(self._temperature, dtype=torch.float32, device=self._device)
        # A temperature below float32's range would be 0 here: the smallest normal float32 stands for it.
        self._temperature_t = temperature.clamp(min=torch.finfo(torch.float32).tiny)[:, None]
        self._threshold_t = (
            torch.tensor(self._threshold, dtype=torch.float32, device=self._device)[:, None]
            if any(t >= 0 for t in self._threshold)
            else None
        )

    def select(self, keep: Sequence[int]) -> None:
        """Only the rows at `keep` (positions in the live batch, ascending) go on."""
        new_position = {old: new for new, old in enumerate(keep)}
        kept = [i for i, position in enumerate(self._sampled) if position in new_position]
        self._rows = len(keep)
        self._sampled = [new_position[self._sampled[i]] for i in kept]
        self._generators = [self._generators[i] for i in kept]
        self._temperature = [self._temperature[i] for i in kept]
        self._threshold = [self._threshold[i] for i in kept]
        self._tensors()

    def extend(self, other: BatchSampler) -> None:
        """`other`'s rows join the batch, after its current ones (rows joining a running decode)."""
        offset = self._rows
        self._sampled += [offset + position for position in other._sampled]
        self._generators += other._generators
        self._temperature += other._temperature
        self._threshold += other._threshold
        self._rows += other._rows
        self._tensors()

    def __call__(self, logits: Any) -> Any:
        """`logits` (live rows x vocabulary, float32) -> the next token of each row (a device tensor)."""
        import torch

        tokens = logits.argmax(dim=-1)
        if not self._sampled:
            return tokens
        # Shifted so each row's best score is 0: a temperature near 0 then sends the others to -inf, never
        # making inf / inf (NaN); the softmax is the same.
        picked = logits.index_select(0, self._index)
        scores = (picked - picked.amax(dim=-1, keepdim=True)) / self._temperature_t
        if self._threshold_t is not None:
            scores = _top_p_filter(scores, self._threshold_t)
        cumulative = scores.softmax(dim=-1).cumsum(dim=-1)
        uniform = torch.cat([torch.rand(1, generator=g, device=self._device) for g in self._generators])
        drawn = torch.searchsorted(cumulative, uniform[:, None] * cumulative[:, -1:], right=True)[:, 0]
        # u * total rounding up to the total (once in ~10^7 draws) would point past the vocabulary: take the
        # row's most likely token instead, which always has probability.
        drawn = torch.where(drawn < cumulative.shape[-1], drawn, tokens.index_select(0, self._index))
        return tokens.index_copy(0, self._index, drawn)
