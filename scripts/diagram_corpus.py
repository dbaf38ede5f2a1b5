"""mini-llm's pretraining text: scenario -> PlantUML conversations with random names, the 320 training pairs and
plain English about PlantUML, drawn from a seeded RNG.

Random scenarios go through the same writers as the shipped pairs (plantuml_pairs_render.py), so the prompts read
like the pairs' and the diagrams are in their style, but every name, message and value is drawn at random (from
words of the training scenarios and made-up ones): the model can only write the diagram by copying the request's
names. The held-out scenarios (plantuml_pairs_heldout.jsonl) are never read.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from plantuml_pairs_content import TRAIN
from plantuml_pairs_render import WRITERS, a_or_an, cap, words

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "zar",
    "ven",
    "tor",
    "bel",
    "qui",
    "dra",
    "nex",
    "pol",
    "rin",
    "sta",
    "vu",
    "mor",
    "fen",
    "gal",
    "hux",
    "jin",
    "ot",
    "ar",
    "el",
    "ix",
    "um",
    "sel",
    "bro",
    "tak",
    "wen",
    "plim",
    "dor",
    "gru",
    "fas",
    "nol",
    "ter",
    "zim",
    "yup",
    "cav",
    "lud",
]
_TYPES = ("String", "int", "Date", "float", "boolean", "Money", "long", "Text")
_COLUMN_TYPES = ("varchar", "int", "date", "decimal", "text", "bool")
_LINK_LABELS = ("REST", "SQL", "HTTPS", "gRPC", "events", "JDBC", "AMQP", "WebSocket", "TCP", "HTTP", "publish")
_SIGNAL_KINDS = ("robust", "concise")


@cache
def _pool() -> tuple[str, ...]:
    """Lowercase words of the training scenarios (never the held-out ones), 3 to 10 letters."""
    text = json.dumps(TRAIN)
    found = sorted({w.lower() for w in re.findall(r"\b[A-Za-z]{3,10}\b", text)} - {"uml", "startuml", "enduml"})
    return tuple(found)


class Names:
    """Random identifiers and phrases: real words of the training scenarios mixed with made-up ones."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def word(self) -> str:
        if self.rng.random() < 0.3:
            return "".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(2, 3)))
        return self.rng.choice(_pool())

    def ident(self, parts: int | None = None) -> str:
        """A CamelCase name, e.g. `OrderZarven`."""
        return "".join(cap(self.word()) for _ in range(parts or self.rng.randint(1, 2)))

    def idents(self, count: int) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            name = self.ident()
            if name not in out and words(name) not in (words(o) for o in out):
                out.append(name)
        return out

    def lower_ident(self) -> str:
        """`order7`-like object names."""
        return self.word() + (str(self.rng.randint(1, 99)) if self.rng.random() < 0.6 else "")

    def phrase(self, low: int = 1, high: int = 3) -> str:
        return " ".join(self.word() for _ in range(self.rng.randint(low, high)))

    def title(self) -> str:
        return a_or_an(self.phrase(1, 2)) if self.rng.random() < 0.6 else self.phrase(1, 3)


def _sequence(n: Names) -> Any:
    names = n.idents(n.rng.randint(2, 4))
    participants = [names[0] + "*" if n.rng.random() < 0.7 else names[0], *names[1:]]
    steps = []
    for _ in range(n.rng.randint(2, 5)):
        a, b = n.rng.sample(names, 2)
        steps.append(f"{a} {n.rng.choice(['>', '>', '>>'])} {b}: {n.phrase()}")
    return n.title(), participants, steps


def _class(n: Names) -> Any:
    names = n.idents(n.rng.randint(2, 3))
    classes = []
    for name in names:
        fields = [f"{n.word()} {n.rng.choice(_TYPES)}" for _ in range(n.rng.randint(0, 2))]
        methods = [n.word() + (cap(n.word()) if n.rng.random() < 0.5 else "") for _ in range(n.rng.randint(0, 2))]
        if fields:
            classes.append(f"{name}: {', '.join(fields)}" + (f"; {', '.join(methods)}" if methods else ""))
        else:
            classes.append(f"{name}; {', '.join(methods)}")
    links = []
    for _ in range(n.rng.randint(1, 2)):
        a, b = n.rng.sample(names, 2)
        label = f": {n.phrase(1, 2)}" if n.rng.random() < 0.4 else ""
        links.append(f"{a} {n.rng.choice(['<|--', '*--', 'o--', '-->'])} {b}{label}")
    return n.title(), classes, links


def _usecase(n: Names) -> Any:
    actors = n.idents(n.rng.randint(1, 2))
    cases = list(dict.fromkeys(n.phrase(2, 3) for _ in range(n.rng.randint(2, 5))))
    plan = {actor: n.rng.sample(cases, n.rng.randint(1, min(3, len(cases)))) for actor in actors}
    includes = [f"{cases[0]} > {n.phrase(2, 3)}"] if n.rng.random() < 0.5 else []
    system = " ".join(cap(w) for w in n.phrase(1, 2).split()) + n.rng.choice([" System", " App", " Portal", ""])
    return system.strip(), plan, includes


def _activity(n: Names) -> Any:
    steps = [n.phrase(2, 4) for _ in range(n.rng.randint(2, 4))]
    if n.rng.random() < 0.6:
        steps.insert(n.rng.randint(1, len(steps) - 1), f"?{n.phrase(2, 3)}|{n.phrase(2, 3)}|{n.phrase(2, 3)}")
    if n.rng.random() < 0.3:
        steps.insert(n.rng.randint(1, len(steps) - 1), f"*{n.phrase(2, 3)}|{n.phrase(2, 3)}")
    return n.title(), steps


def _state(n: Names) -> Any:
    states = n.idents(n.rng.randint(2, 4))
    transitions = [f"{a} > {b}: {n.phrase(1, 2)}" for a, b in itertools.pairwise(states)]
    if n.rng.random() < 0.4:
        transitions.append(f"{states[-1]} > {states[0]}: {n.phrase(1, 2)}")
    transitions.append(f"{states[-1]} > end: {n.phrase(1, 2)}")
    return n.title(), states[0], transitions


def _component(n: Names) -> Any:
    names = n.idents(n.rng.randint(2, 4))
    parts = [n.rng.choice(["", "", "db:", "queue:"]) + name for name in names]
    links = [f"{a} > {b}: {n.rng.choice(_LINK_LABELS)}" for a, b in itertools.pairwise(names)]
    return n.title(), parts, links


def _deployment(n: Names) -> Any:
    names = n.idents(n.rng.randint(2, 4))
    elements, targets = [], []
    for index, name in enumerate(names):
        kind = "actor" if index == 0 and n.rng.random() < 0.6 else n.rng.choice(["node", "node", "cloud", "database"])
        if kind == "node" and n.rng.random() < 0.6:
            inner = n.ident()
            elements.append(f"node:{name}({n.rng.choice(['artifact', 'database'])}:{inner})")
            targets.append(inner)
        else:
            elements.append(f"{kind}:{name}")
        targets.append(name)
    links = []
    for a, b in itertools.pairwise(names):
        links.append(f"{a} > {b}" + (f": {n.rng.choice(_LINK_LABELS)}" if n.rng.random() < 0.7 else ""))
    return n.title(), elements, links


def _value(n: Names) -> str:
    roll = n.rng.random()
    if roll < 0.4:
        return f'"{cap(n.word())}"'
    if roll < 0.7:
        return str(n.rng.randint(1, 2000))
    return f"{n.rng.randint(1, 999)}.{n.rng.randint(10, 99)}"


def _object(n: Names) -> Any:
    names = list(dict.fromkeys(n.lower_ident() for _ in range(n.rng.randint(2, 3))))
    if len(names) < 2:
        names.append(names[0] + "2")
    items = [f"{name}: " + ", ".join(f"{n.word()}={_value(n)}" for _ in range(n.rng.randint(1, 2))) for name in names]
    links = [f"{a} > {b}: {n.word()}" for a, b in itertools.pairwise(names)]
    return n.title(), items, links


def _er(n: Names) -> Any:
    tables = n.idents(n.rng.randint(2, 3))
    specs = [
        f"{t}: " + ", ".join(f"{n.word()} {n.rng.choice(_COLUMN_TYPES)}" for _ in range(n.rng.randint(1, 2)))
        for t in tables
    ]
    relations = [
        f"{a} {n.rng.choice(['1-n', '1-1', '1-01', 'n-n'])} {b}: {n.word()}" for a, b in itertools.pairwise(tables)
    ]
    return n.title(), specs, relations


def _gantt(n: Names) -> Any:
    tasks = [cap(n.phrase(1, 3)) for _ in range(n.rng.randint(2, 4))]
    lines = [f"{tasks[0]}: {n.rng.randint(1, 20)}"]
    for before, task in itertools.pairwise(tasks):
        lines.append(f"{task}: {n.rng.randint(1, 20)}" + (f" after {before}" if n.rng.random() < 0.8 else ""))
    if n.rng.random() < 0.6:
        lines.append(f"!{cap(n.phrase(1, 2))} after {tasks[-1]}")
    start = f"2026-{n.rng.randint(1, 12):02d}-{n.rng.randint(1, 28):02d}"
    return n.title(), start, lines


def _tree(n: Names) -> str:
    branches = []
    for _ in range(n.rng.randint(2, 4)):
        leaves = [cap(n.phrase(1, 2)) for _ in range(n.rng.randint(0, 3))]
        branches.append(cap(n.phrase(1, 2)) + (f"({', '.join(leaves)})" if leaves else ""))
    return f"{cap(n.phrase(1, 3))}: {'; '.join(branches)}"


def _timing(n: Names) -> Any:
    labels = list(dict.fromkeys(n.phrase(1, 2) for _ in range(n.rng.randint(1, 2))))
    names = ["".join(cap(w) for w in label.split()[-n.rng.randint(1, 2) :]) for label in labels]
    if len(set(names)) < len(names):
        names, labels = names[:1], labels[:1]
    signals = [f"{n.rng.choice(_SIGNAL_KINDS)} {name}={label}" for name, label in zip(names, labels, strict=True)]
    moments, time = [], 0
    for _ in range(n.rng.randint(2, 4)):
        changed = n.rng.sample(names, n.rng.randint(1, len(names)))
        moments.append(f"{time}: " + ", ".join(f"{name} {n.ident(1)}" for name in changed))
        time += n.rng.choice([5, 10, 15, 20, 30, 60])
    return n.title(), signals, moments


SPECS: dict[str, Callable[[Names], Any]] = {
    "sequence": _sequence,
    "class": _class,
    "usecase": _usecase,
    "activity": _activity,
    "state": _state,
    "component": _component,
    "deployment": _deployment,
    "object": _object,
    "er": _er,
    "gantt": _gantt,
    "mindmap": _tree,
    "wbs": _tree,
    "timing": _timing,
}


def random_pair(rng: random.Random) -> tuple[str, str, str]:
    """(kind, prompt, PlantUML) for a random scenario of a random type."""
    kind = rng.choice(list(SPECS))
    pair = WRITERS[kind](rng.randrange(6), SPECS[kind](Names(rng)))
    return kind, pair.prompt, pair.completion


@cache
def training_pairs() -> tuple[tuple[str, str], ...]:
    text = files("genfoundry.data").joinpath("diagrams", "plantuml_pairs.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return tuple((row["prompt"], row["completion"]) for row in rows)


_KIND_WORDS = {
    "sequence": "sequence diagram",
    "class": "class diagram",
    "usecase": "use case diagram",
    "activity": "activity diagram",
    "state": "state diagram",
    "component": "component diagram",
    "deployment": "deployment diagram",
    "object": "object diagram",
    "er": "entity relationship diagram",
    "gantt": "Gantt chart",
    "mindmap": "mind map",
    "wbs": "work breakdown structure",
    "timing": "timing diagram",
}


def prose(rng: random.Random) -> str:
    """Plain English about a random diagram: what it is asked for and the PlantUML that draws it."""
    kind, prompt, plantuml = random_pair(rng)
    first, last = plantuml.splitlines()[0], plantuml.splitlines()[-1]
    lines = plantuml.splitlines()[1:-1]
    line = rng.choice(lines) if lines else first
    sentences = [
        f"A {_KIND_WORDS[kind]} in PlantUML starts with {first} and ends with {last}.",
        f"Request: {prompt}",
        f"The line `{line}` belongs to this {_KIND_WORDS[kind]}.",
        f"Here is the PlantUML for it:\n{plantuml}",
    ]
    return "\n".join(sentences)


def chatml(prompt: str, reply: str) -> str:
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n{reply}<|im_end|>\n"


def document(rng: random.Random) -> str:
    """One pretraining document: 70% a random scenario as a ChatML conversation, 15% a shipped training pair in
    ChatML, 15% plain English with the diagram."""
    roll = rng.random()
    if roll < 0.7:
        _kind, prompt, plantuml = random_pair(rng)
        return chatml(prompt, plantuml)
    if roll < 0.85:
        return chatml(*rng.choice(training_pairs()))
    return prose(rng) + "\n"
