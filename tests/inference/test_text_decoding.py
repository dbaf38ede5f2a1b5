"""Decoding pieces on their own: stop strings held back and trimmed, incremental detokenizing, per-row seeds
in the batch sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genfoundry.inference.text_decoding import IncrementalDetokenizer, RowState, StopMatcher, TextDelta
from genfoundry.inference.text_sampling import BatchSampler


@pytest.fixture(scope="module")
def tokenizer(tiny_llm: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llm)


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    released = ""
    for piece in pieces:
        out, stopped = matcher.feed(piece)
        released += out
        if stopped:
            return released, True
    return released + matcher.finish(), False


def test_stop_string_split_across_pieces_is_trimmed_and_never_released() -> None:
    matcher = StopMatcher(["@enduml"])
    released = []
    for piece in ["A -> B", "\n@end", "uml", " trailing"]:
        out, stopped = matcher.feed(piece)
        released.append(out)
        if stopped:
            break
    assert stopped
    assert "".join(released) == "A -> B\n"
    assert all("@end" not in part for part in released)  # the partial "@end" was held back, not streamed


def test_partial_stop_prefix_is_released_once_it_cannot_match() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("abc ST") == ("abc ", False)
    assert matcher.feed("ART") == ("START", False)
    assert matcher.finish() == ""


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(["zz", "b"]), ["a", "bzz"]) == ("a", True)
    assert feed_all(StopMatcher([]), ["a", "b"]) == ("ab", False)


def test_incremental_detokenizer_matches_full_decode(tokenizer: Any) -> None:
    text = "A sequence diagram: Alice -> Bob: hello ünïcödé ✓ 🚀 done"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    detok = IncrementalDetokenizer(tokenizer, prompt_ids=tokenizer("prompt:", add_special_tokens=False)["input_ids"])
    pieces = [detok.add(token) for token in ids]
    pieces.append(detok.flush())
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)  # half characters wait for their other bytes


def _row(tokenizer: Any, *, seed: int, temperature: float = 1.0, max_tokens: int = 50, **kwargs: Any) -> RowState:
    row = RowState(
        index=0,
        prompt_len=1,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=kwargs.pop("top_p", 1.0),
        seed=seed,
        eos_ids=frozenset({tokenizer.eos_token_id}),
        detokenizer=IncrementalDetokenizer(tokenizer, [5]),
        stop=StopMatcher(kwargs.pop("stops", ())),
        **kwargs,
    )
    return row


def _sample(rows: list[RowState], steps: int, vocab: int = 64) -> list[list[int]]:
    """Drive BatchSampler like the decode loop does, dropping ended rows; every row sees the same logits."""
    torch.manual_seed(0)
    logits = torch.randn(steps, 1, vocab)
    sampler = BatchSampler(rows, "cpu")
    live = list(range(len(rows)))
    for step in range(steps):
        chosen = sampler(logits[step].expand(len(live), vocab).clone()).tolist()
        for i, token in zip(live, chosen, strict=True):
            rows[i].consume(token)
        going = [at for at, i in enumerate(live) if not rows[i].finished]
        if not going:
            break
        sampler.select(going)
        live = [live[at] for at in going]
    return [row.tokens for row in rows]


def test_rows_sample_from_their_own_seed_whatever_shares_the_batch(tokenizer: Any) -> None:
    alone = _sample([_row(tokenizer, seed=7)], 10)[0]
    again = _sample([_row(tokenizer, seed=7)], 10)[0]
    beside_others = _sample([_row(tokenizer, seed=1), _row(tokenizer, seed=7), _row(tokenizer, seed=2)], 10)
    assert alone == again == beside_others[1]
    assert beside_others[0] != beside_others[1]
    greedy = _sample([_row(tokenizer, seed=1, temperature=0.0), _row(tokenizer, seed=2, temperature=0.0)], 5)
    assert greedy[0] == greedy[1]  # temperature 0 ignores the seed


def test_rows_leaving_the_batch_do_not_change_the_others_draws(tokenizer: Any) -> None:
    settings: list[dict[str, Any]] = [
        {"seed": 7, "max_tokens": 10},
        {"seed": 8, "max_tokens": 2, "temperature": 0.5},
        {"seed": 9, "max_tokens": 5, "top_p": 0.8},
        {"seed": 0, "max_tokens": 1, "temperature": 0.0},
    ]
    together = _sample([_row(tokenizer, **kw) for kw in settings], 10)
    alone = [_sample([_row(tokenizer, **kw)], 10)[0] for kw in settings]
    assert together == alone
    assert [len(tokens) for tokens in together] == [10, 2, 5, 1]


def test_draws_follow_the_softmax_of_the_scaled_logits() -> None:
    row = RowState(
        index=0,
        prompt_len=1,
        max_tokens=1,
        temperature=2.0,
        top_p=1.0,
        seed=1,
        eos_ids=frozenset(),
        detokenizer=IncrementalDetokenizer(None, []),
        stop=StopMatcher(()),
    )
    sampler = BatchSampler([row], "cpu")
    logits = torch.tensor([[0.0, 2.0, 4.0, -200.0]])
    counts = torch.bincount(torch.cat([sampler(logits) for _ in range(20000)]), minlength=4) / 20000
    expected = (logits[0] / 2.0).softmax(dim=-1)
    assert torch.allclose(counts, expected, atol=0.015)
    assert counts[3] == 0  # a token of (almost) no probability is never drawn


def test_extreme_temperatures_draw_a_real_token(tokenizer: Any) -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 64) * 5
    for temperature, top_p in ((1e-30, 1.0), (5e-324, 0.5), (1e-8, 1e-9)):  # as good as greedy
        rows = [_row(tokenizer, seed=s, temperature=temperature, top_p=top_p) for s in (1, 2)]
        assert BatchSampler(rows, "cpu")(logits.clone()).tolist() == logits.argmax(dim=-1).tolist()
    hot = BatchSampler([_row(tokenizer, seed=s, temperature=1e30) for s in range(50)], "cpu")
    drawn = hot(logits[:1].expand(50, 64).clone())
    assert ((drawn >= 0) & (drawn < 64)).all()
    assert len(set(drawn.tolist())) > 10  # all but uniform


def test_top_p_near_zero_is_greedy(tokenizer: Any) -> None:
    greedy = _sample([_row(tokenizer, seed=3, temperature=0.0)], 8)[0]
    assert _sample([_row(tokenizer, seed=3, top_p=1e-6)], 8)[0] == greedy


def test_row_ends_on_eos_on_budget_and_reports_deltas(tokenizer: Any) -> None:
    deltas: list[TextDelta] = []
    row = _row(tokenizer, seed=0, max_tokens=3, on_delta=deltas.append)
    hello = tokenizer("hello world again and more", add_special_tokens=False)["input_ids"]
    for token in hello[:3]:
        row.consume(token)
    assert row.finish_reason == "length" and len(row.tokens) == 3
    assert deltas[-1].finish_reason == "length"
    assert "".join(d.text for d in deltas) == row.text == tokenizer.decode(hello[:3])

    eos_row = _row(tokenizer, seed=0, max_tokens=10)
    eos_row.consume(hello[0])
    eos_row.consume(tokenizer.eos_token_id)
    assert eos_row.finish_reason == "stop"
    assert len(eos_row.tokens) == 2  # the EOS token counts as generated
    assert eos_row.text == tokenizer.decode(hello[:1])
