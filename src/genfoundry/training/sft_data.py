"""SFT data: JSONL records to token ids with labels on the reply tokens only, batches, packing and the split."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfoundry.datasets.jsonl import validate_jsonl
from genfoundry.errors import Invalid
from genfoundry.text.formats import PLAIN_TURN_SEPARATOR, TextFormat, plain_turns, render_chat, render_prompt

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100  # the label of a token that carries no loss (torch's cross_entropy default)
SFT_FORMATS = ("prompt_completion", "chat")


@dataclass(frozen=True)
class SftExample:
    """One tokenized example: `labels` equals `input_ids` on reply tokens and IGNORE_INDEX elsewhere."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def trained_tokens(self) -> int:
        """Tokens that carry loss (the first token never does: nothing predicts it)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def read_records(path: Path, *, param: str = "training_file") -> list[dict[str, Any]]:
    """The records of a prompt/completion or chat JSONL file, checked line by line."""
    report = validate_jsonl(Path(path))
    if report.format not in SFT_FORMATS:
        raise Invalid(
            f'SFT trains on {{"prompt", "completion"}} or {{"messages"}} lines; this file is {report.format}',
            param=param,
        )
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def file_digest(path: Path | None) -> str:
    """sha256 of a file's bytes ("" for None): a checkpoint records what data it was trained on."""
    if path is None:
        return ""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def conversation(record: dict[str, Any]) -> list[dict[str, str]]:
    """A record as chat messages: a prompt/completion pair is one user turn and one assistant turn."""
    if "messages" in record:
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in record["messages"]]
    return [{"role": "user", "content": record["prompt"]}, {"role": "assistant", "content": record["completion"]}]


def segments(record: dict[str, Any], text_format: TextFormat, tokenizer: Any) -> list[tuple[str, bool]]:
    """The example's text in pieces, each marked whether it is trained on (the assistant replies and their end).

    For a chat template the replies are found by rendering the conversation up to each assistant message with
    and without it: what it adds (reply and end-of-turn tokens) trains; the prompt part does not.
    """
    messages = conversation(record)
    if text_format.prompt_format == "plain":
        eos = getattr(tokenizer, "eos_token", None)
        if not eos:
            raise Invalid("the plain prompt format needs a tokenizer with an end-of-sequence token", param="model")
        pieces: list[tuple[str, bool]] = []
        for prompt, reply in plain_turns(messages):
            if reply is None:
                break
            pieces += [(render_prompt(prompt, template=text_format.plain_template), False), (reply + eos, True)]
            pieces.append((PLAIN_TURN_SEPARATOR, False))
        return pieces[:-1]
    pieces = []
    done = 0
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:index], text_format.chat_template, add_generation_prompt=True)
        rendered = _render(tokenizer, messages[: index + 1], text_format.chat_template, add_generation_prompt=False)
        if not rendered.startswith(prefix) or len(prefix) < done or not prefix.startswith(_joined(pieces)):
            raise Invalid(
                "the chat template does not render a conversation as a prefix of its continuation, so the "
                "assistant tokens cannot be found; give a chat_template that does",
                param="chat_template",
            )
        pieces += [(prefix[done:], False), (rendered[len(prefix) :], True)]
        done = len(rendered)
    return [(text, trained) for text, trained in pieces if text]


def _render(
    tokenizer: Any, messages: list[dict[str, str]], template: str | None, *, add_generation_prompt: bool
) -> str:
    from jinja2 import TemplateError

    try:
        return render_chat(tokenizer, messages, chat_template=template, add_generation_prompt=add_generation_prompt)
    except (TemplateError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"the chat template cannot render this conversation: {exc}", param="training_file") from None


def _joined(pieces: Sequence[tuple[str, bool]]) -> str:
    return "".join(text for text, _ in pieces)


def tokenize_example(tokenizer: Any, pieces: Sequence[tuple[str, bool]], max_seq_length: int) -> SftExample | None:
    """Token ids and labels for the pieces, cut at `max_seq_length`; None when no trained token is left.

    Each piece is tokenized on its own, so a prompt's tokens are exactly those generation sees after it.
    """
    ids: list[int] = list(_leading_special_ids(tokenizer, pieces[0][0] if pieces else ""))
    labels: list[int] = [IGNORE_INDEX] * len(ids)
    for text, trained in pieces:
        piece_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids += piece_ids
        labels += piece_ids if trained else [IGNORE_INDEX] * len(piece_ids)
    example = SftExample(tuple(ids[:max_seq_length]), tuple(labels[:max_seq_length]))
    return example if example.trained_tokens else None


def _leading_special_ids(tokenizer: Any, first_text: str) -> list[int]:
    """The ids the tokenizer puts before any text (a BOS), unless the rendered text already starts with it."""
    empty = list(tokenizer("", add_special_tokens=True)["input_ids"])
    bos = getattr(tokenizer, "bos_token", None)
    if not empty or (bos and first_text.startswith(bos)):
        return []
    return empty


def tokenize_records(
    records: Sequence[dict[str, Any]], text_format: TextFormat, tokenizer: Any, max_seq_length: int
) -> tuple[list[SftExample], int]:
    """Tokenized examples and how many records were dropped (their reply lies past `max_seq_length`)."""
    examples: list[SftExample] = []
    dropped = 0
    for record in records:
        example = tokenize_example(tokenizer, segments(record, text_format, tokenizer), max_seq_length)
        if example is None:
            dropped += 1
        else:
            examples.append(example)
    return examples, dropped


def split_records(
    records: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): a seeded random `fraction` of the records held out, at least one when asked for."""
    if fraction <= 0:
        return records, []
    held = max(1, round(len(records) * fraction))
    if held >= len(records):
        raise Invalid(
            f"validation_fraction {fraction} leaves no training examples out of {len(records)}",
            param="validation_fraction",
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    chosen = set(order[:held])
    return [r for i, r in enumerate(records) if i not in chosen], [r for i, r in enumerate(records) if i in chosen]


@dataclass(frozen=True)
class TrainingUnit:
    """One row of a batch: an example, or several packed into one sequence (each restarting its positions)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    position_ids: tuple[int, ...]


def single_unit(example: SftExample) -> TrainingUnit:
    return TrainingUnit(example.input_ids, example.labels, tuple(range(len(example.input_ids))))


def pack_examples(examples: Sequence[SftExample], max_seq_length: int) -> list[TrainingUnit]:
    """First-fit-decreasing packing into rows of at most `max_seq_length` tokens.

    Positions restart at 0 for every example, which makes transformers build a block-diagonal causal mask (no
    attention across examples); each example's first label is ignored, since the previous example's last token
    would otherwise predict it.
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    rows: list[list[int]] = []
    room: list[int] = []
    for index in order:
        length = len(examples[index].input_ids)
        slot = next((r for r, free in enumerate(room) if free >= length), None)
        if slot is None:
            rows.append([index])
            room.append(max_seq_length - length)
        else:
            rows[slot].append(index)
            room[slot] -= length
    units = []
    for row in rows:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for index in row:
            example = examples[index]
            ids += example.input_ids
            labels += [IGNORE_INDEX, *example.labels[1:]]
            positions += range(len(example.input_ids))
        units.append(TrainingUnit(tuple(ids), tuple(labels), tuple(positions)))
    return units


class BatchSchedule:
    """Micro-batch `k` is a pure function of (seed, k): each epoch is a seeded shuffle of the units, so a resumed
    run sees exactly the batches an uninterrupted one would."""

    def __init__(self, units: Sequence[TrainingUnit], batch_size: int, seed: int) -> None:
        if not units:
            raise Invalid("no training examples are left to train on", param="training_file")
        self.units = list(units)
        self.batch_size = batch_size
        self.seed = seed
        self.batches_per_epoch = math.ceil(len(self.units) / batch_size)
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(len(self.units)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._orders = {epoch: order}  # one epoch at a time is all a run needs
        return self._orders[epoch]

    def batch(self, micro_step: int) -> list[TrainingUnit]:
        epoch, index = divmod(micro_step, self.batches_per_epoch)
        order = self._order(epoch)
        return [self.units[i] for i in order[index * self.batch_size : (index + 1) * self.batch_size]]


def collate(units: Sequence[TrainingUnit], pad_id: int, *, packed: bool) -> dict[str, torch.Tensor]:
    """Right-padded tensors. Unpacked rows get an attention mask; packed rows get position ids and no mask, which
    transformers reads as packed sequences (padding forms one more, ignored, sequence)."""
    import torch

    width = max(len(u.input_ids) for u in units)
    ids = torch.full((len(units), width), pad_id, dtype=torch.long)
    labels = torch.full((len(units), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(units), width), dtype=torch.long)
    positions = torch.zeros((len(units), width), dtype=torch.long)
    for row, unit in enumerate(units):
        n = len(unit.input_ids)
        ids[row, :n] = torch.tensor(unit.input_ids)
        labels[row, :n] = torch.tensor(unit.labels)
        mask[row, :n] = 1
        positions[row, :n] = torch.tensor(unit.position_ids)
        positions[row, n:] = torch.arange(width - n)
    if packed:
        return {"input_ids": ids, "labels": labels, "position_ids": positions}
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
