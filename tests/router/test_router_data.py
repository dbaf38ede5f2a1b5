"""The shipped prompt-router data: well-formed, balanced enough, no leaks between splits, Spanish and hard negatives."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

import genfoundry

ROUTER_DIR = Path(genfoundry.__file__).parent / "data" / "router"
SPLITS = ("train", "heldout")
LABELS = {"image", "diagram", "chat"}
MIN_PER_LABEL = {"train": 300, "heldout": 80}
MIN_SPANISH_PER_LABEL = 10
MIN_SHORT_AND_LONG_PER_LABEL = 3

# Words common in Spanish messages and rare in English ones; three distinct ones mark a line as Spanish.
SPANISH_WORD_LIST = (
    "de del para una un el la los las que qué cómo por con mi mis quiero necesito haz hazme crea dibuja "
    "genera diagrama imagen foto hola gracias es sobre puedes esta este en y se hace dame dime"
)
SPANISH_WORDS = frozenset(SPANISH_WORD_LIST.split())
SPANISH_CHARS = re.compile(r"[¿¡ñÑ]")
# Vocabulary of the hard negatives: chat about pictures, art, design, diagrams or this service.
VISUAL_WORDS = re.compile(
    r"\b(images?|imagen\w*|photo\w*|fotos?|pictures?|pics?|paint\w*|draw\w*|dibuj\w*|art|arte|artists?|"
    r"illustrat\w*|logo\w*|posters?|cartel|banners?|cameras?|cámara|lens\w*|diagrams?|diagrama\w*|uml|plantuml|"
    r"flowcharts?|gantt|mind ?maps?|erds?|sequence|class|design\w*|diseñ\w*|fonts?|colou?rs?|visual\w*|"
    r"render\w*|sketch\w*|captions?|pie de foto|alt text|prompts?|midjourney|diffusion|generat\w*|canva|"
    r"photoshop|lightroom|procreate|png|jpe?g|svg|webp|gif|wallpapers?|infographics?|murals?|storyboard)\b",
    re.IGNORECASE,
)


@cache
def load_split(split: str) -> tuple[tuple[int, dict[str, object]], ...]:
    """(line number, parsed object) for every line of a split's JSONL file."""
    rows = []
    with (ROUTER_DIR / f"{split}.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            rows.append((number, json.loads(line)))
    return tuple(rows)


def texts(split: str, label: str | None = None) -> list[str]:
    return [str(row["text"]) for _, row in load_split(split) if label is None or row["label"] == label]


def normalise(text: str) -> str:
    """Case-folded, punctuation dropped, whitespace collapsed: the key for near-exact duplicates."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch for ch in folded if not unicodedata.category(ch).startswith("P"))
    return " ".join(kept.split())


def is_spanish(text: str) -> bool:
    if SPANISH_CHARS.search(text):
        return True
    words = set(re.findall(r"[a-záéíóúüñ]+", text.lower()))
    return len(words & SPANISH_WORDS) >= 3


@pytest.mark.parametrize("split", SPLITS)
def test_every_line_is_a_text_and_a_known_label(split: str) -> None:
    raw = (ROUTER_DIR / f"{split}.jsonl").read_text(encoding="utf-8")
    assert raw.endswith("\n")
    assert all(line.strip() for line in raw.splitlines()), "blank line in the file"
    for number, row in load_split(split):
        assert isinstance(row, dict) and set(row) == {"text", "label"}, f"{split}:{number}: {row!r}"
        text = row["text"]
        assert isinstance(text, str) and text.strip(), f"{split}:{number}: empty text"
        assert text == text.strip(), f"{split}:{number}: leading or trailing whitespace"
        assert row["label"] in LABELS, f"{split}:{number}: label {row['label']!r}"


@pytest.mark.parametrize("split", SPLITS)
def test_counts_per_label(split: str) -> None:
    counts = Counter(str(row["label"]) for _, row in load_split(split))
    assert set(counts) == LABELS
    assert min(counts.values()) >= MIN_PER_LABEL[split], counts
    # Roughly balanced: no label more than twice another.
    assert max(counts.values()) <= 2 * min(counts.values()), counts


def test_no_duplicates_within_or_across_splits() -> None:
    seen: dict[str, str] = {}
    duplicates = []
    for split in SPLITS:
        for number, row in load_split(split):
            key = normalise(str(row["text"]))
            assert key, f"{split}:{number}: nothing left after dropping punctuation"
            where = f"{split}:{number}"
            if key in seen:
                duplicates.append(f"{where} repeats {seen[key]}: {row['text']!r}")
            else:
                seen[key] = where
    assert not duplicates, "\n".join(duplicates)


def test_normalise_catches_case_and_punctuation_variants() -> None:
    assert normalise("Draw me a cat!") == normalise("draw me a  cat")
    assert normalise("¿Qué es UML?") == normalise("qué es uml")
    assert normalise("draw me a cat") != normalise("draw me a dog")


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("label", sorted(LABELS))
def test_spanish_in_every_label(split: str, label: str) -> None:
    spanish = [text for text in texts(split, label) if is_spanish(text)]
    assert len(spanish) >= MIN_SPANISH_PER_LABEL, spanish


def test_spanish_marker_does_not_fire_on_english() -> None:
    assert is_spanish("haz un logo para mi cafetería")
    assert is_spanish("¿qué es un diagrama de clases?")
    assert not is_spanish("make a logo for the cafe in the plaza")
    assert not is_spanish("sequence diagram of the login")


@pytest.mark.parametrize("split", SPLITS)
def test_chat_holds_hard_negatives(split: str) -> None:
    chat = texts(split, "chat")
    about_visuals = [text for text in chat if VISUAL_WORDS.search(text)]
    assert len(about_visuals) * 3 >= len(chat), f"{len(about_visuals)} of {len(chat)} chat lines are hard negatives"


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("label", sorted(LABELS))
def test_short_and_long_messages_in_every_label(split: str, label: str) -> None:
    lengths = [len(text.split()) for text in texts(split, label)]
    assert sum(n <= 4 for n in lengths) >= MIN_SHORT_AND_LONG_PER_LABEL
    assert sum(n >= 25 for n in lengths) >= MIN_SHORT_AND_LONG_PER_LABEL


def test_datasheet_counts_match_the_files() -> None:
    sheet = (ROUTER_DIR / "README.md").read_text(encoding="utf-8")
    for split in SPLITS:
        counts = Counter(str(row["label"]) for _, row in load_split(split))
        row = f"| {split} | {counts['image']} | {counts['diagram']} | {counts['chat']} | {sum(counts.values())} |"
        assert row in sheet, f"README.md lacks the row {row!r}"
