"""Turns the hand-written scenario specs of scripts/plantuml_pairs_content.py into (prompt, PlantUML) pairs.

Each diagram type has one compact spec form and one writer; the prompt names every element the diagram holds
(participants, messages, classes, states, tasks...), phrased by one of a few sentence patterns per type chosen
by the scenario's position, so a small model can learn to map words to PlantUML without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pair:
    kind: str
    prompt: str
    completion: str


def words(identifier: str) -> str:
    """`PaymentService` -> `payment service` (acronyms kept: `OrdersDB` -> `orders DB`)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", identifier)
    return " ".join(part if part.isupper() and len(part) > 1 else part.lower() for part in spaced.split())


def listing(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def a_or_an(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def uml(*lines: str, kind: str = "uml") -> str:
    return "\n".join([f"@start{kind}", *lines, f"@end{kind}"])


# 1. Sequence: ("title", ["Actor*", ...], ["A > B: message", "B >> A: reply", ...])
def sequence(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, participants, steps = spec
    lines, clauses = [], []
    actors = [name.rstrip("*") for name in participants if name.endswith("*")]
    for name in participants:
        lines.append(f"actor {name[:-1]}" if name.endswith("*") else f"participant {name}")
    for step in steps:
        match = re.match(r"^(\w+) (>>?) (\w+): (.+)$", step)
        assert match, step
        a, arrow, b, message = match.groups()
        lines.append(f"{a} {'->' if arrow == '>' else '-->'} {b} : {message}")
        verb = "sends" if arrow == ">" else "replies"
        clauses.append(f'the {words(a)} {verb} "{message}" to the {words(b)}')
    who = ""
    if actors:
        who = f" The {listing([words(a) for a in actors])} {'is an actor' if len(actors) == 1 else 'are actors'}."
    patterns = [
        f"Draw a sequence diagram of {title}.{who} {cap('. Then '.join(clauses))}.",
        f"Sequence diagram for {title}: {', then '.join(clauses)}.{who}",
        f"Show {title} as a UML sequence diagram where {'; '.join(clauses)}.{who}",
    ]
    return Pair("sequence", patterns[index % 3], uml(*lines))


# 2. Class: ("title", ["Name: attr Type, attr Type; method, method", ...], ["A <|-- B", "A *-- B", "A o-- B: label"])
_CLASS_LINKS = {
    "<|--": "{an_b} is a kind of {a}",
    "*--": "{an_a} is made of {b} parts",
    "o--": "{an_a} has many {b} items",
    "-->": "{an_a} uses {an_b}",
}


def klass(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, classes, links = spec
    lines, sentences = [], []
    for entry in classes:
        name, colon, body = entry.partition(":")
        if not colon:  # "Name; method, method": no fields
            name, _, methods = entry.partition(";")
            body = f";{methods}"
        fields_part, _, methods_part = body.partition(";")
        fields = [f.split() for f in fields_part.split(",") if f.strip()]
        methods = [m.strip() for m in methods_part.split(",") if m.strip()]
        if not fields and not methods:
            lines.append(f"class {name.strip()}")
            continue
        lines.append(f"class {name.strip()} {{")
        lines += [f"  +{field} : {kind}" for field, kind in fields]
        lines += [f"  +{method}()" for method in methods]
        lines.append("}")
        parts = []
        if fields:
            parts.append("has " + listing([f"{field} ({kind})" for field, kind in fields]))
        if methods:
            parts.append("can " + listing([f"{method}()" for method in methods]))
        sentences.append(f"{name.strip()} {' and '.join(parts)}")
    link_sentences = []
    for link in links:
        relation, _, label = link.partition(":")
        a, arrow, b = relation.split()
        if arrow == "o--":
            lines.append(f'{a} "1" o-- "*" {b}' + (f" : {label.strip()}" if label else ""))
        else:
            lines.append(f"{a} {arrow} {b}" + (f" : {label.strip()}" if label else ""))
        sentence = _CLASS_LINKS[arrow].format(a=a, b=b, an_a=a_or_an(a), an_b=a_or_an(b))
        link_sentences.append(sentence + (f' ("{label.strip()}")' if label else ""))
    body = ". ".join(sentences)
    rel = ". ".join(cap(s) for s in link_sentences)
    patterns = [
        f"Draw a class diagram for {title}. {body}. {rel}.",
        f"Class diagram of {title}: {'; '.join(sentences)}. Relations: {'; '.join(link_sentences)}.",
    ]
    return Pair("class", patterns[index % 2].replace(". .", "."), uml(*lines))


# 3. Use case: ("system", {"Actor": ["use case", ...]}, ["use case > included use case"])
def usecase(index: int, spec: tuple[str, dict[str, list[str]], list[str]]) -> Pair:
    system, actors, includes = spec
    names: list[str] = []
    for cases in actors.values():
        names += [case for case in cases if case not in names]
    for include in includes:
        names += [case.strip() for case in include.split(">") if case.strip() not in names]
    alias = {case: f"UC{number}" for number, case in enumerate(names, start=1)}
    lines = ["left to right direction", *[f"actor {actor}" for actor in actors], f'rectangle "{system}" {{']
    lines += [f'  usecase "{cap(case)}" as {alias[case]}' for case in names]
    lines.append("}")
    sentences = []
    for actor, cases in actors.items():
        lines += [f"{actor} --> {alias[case]}" for case in cases]
        sentences.append(f"{a_or_an(words(actor))} can {listing([repr_case(c) for c in cases])}")
    for include in includes:
        base, extra = (case.strip() for case in include.split(">"))
        lines.append(f"{alias[base]} ..> {alias[extra]} : <<include>>")
        sentences.append(f"{repr_case(base)} includes {repr_case(extra)}")
    patterns = [
        f"Draw a use case diagram for the {system}. {'. '.join(cap(s) for s in sentences)}.",
        f"Use case diagram of the {system}: {'; '.join(sentences)}.",
    ]
    return Pair("usecase", patterns[index % 2], uml(*lines))


def repr_case(case: str) -> str:
    return f'"{case}"'


# 4. Activity: ("title", ["action", "?condition|yes action|no action", "*condition|loop action", ...])
def activity(index: int, spec: tuple[str, list[str]]) -> Pair:
    title, steps = spec
    lines, clauses = ["start"], []
    for step in steps:
        if step.startswith("?"):
            condition, yes, no = step[1:].split("|")
            lines += [f"if ({cap(condition)}?) then (yes)", f"  :{cap(yes)};", "else (no)", f"  :{cap(no)};", "endif"]
            clauses.append(f"if {condition}, {yes}, otherwise {no}")
        elif step.startswith("*"):
            condition, action = step[1:].split("|")
            lines += [f"while ({cap(condition)}?) is (yes)", f"  :{cap(action)};", "endwhile (no)"]
            clauses.append(f"while {condition}, {action}")
        else:
            lines.append(f":{cap(step)};")
            clauses.append(step)
    lines.append("stop")
    sequence_words = ["first " + clauses[0], *[f"then {c}" for c in clauses[1:-1]], "finally " + clauses[-1]]
    patterns = [
        f"Draw an activity diagram for {title}: {', '.join(sequence_words)}.",
        f"Activity diagram of {title}. Steps: {'; '.join(clauses)}.",
        f"Model {title} as a flow: {', '.join(sequence_words)}.",
    ]
    return Pair("activity", patterns[index % 3], uml(*lines))


# 5. State: ("title", "Initial", ["A > B: event", ..., "B > end: event"])
def state(index: int, spec: tuple[str, str, list[str]]) -> Pair:
    title, initial, transitions = spec
    lines = [f"[*] --> {initial}"]
    clauses = []
    for transition in transitions:
        match = re.match(r"^(\w+) > (\w+): (.+)$", transition)
        assert match, transition
        a, b, event = match.groups()
        if b == "end":
            lines.append(f"{a} --> [*] : {event}")
            clauses.append(f'from {a} it ends on "{event}"')
        else:
            lines.append(f"{a} --> {b} : {event}")
            clauses.append(f'{a} goes to {b} on "{event}"')
    patterns = [
        f"Draw a state diagram of {title}. It starts in {initial}; {'; '.join(clauses)}.",
        f"State machine for {title}: initial state {initial}, {', '.join(clauses)}.",
    ]
    return Pair("state", patterns[index % 2], uml(*lines))


# 6. Component: ("title", ["Name", "db:Name", "queue:Name", ...], ["A > B: label", ...])
_COMPONENT_KINDS = {"": ("component", "component"), "db": ("database", "database"), "queue": ("queue", "queue")}


def component(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, parts, links = spec
    lines, kinds = [], {}
    for part in parts:
        prefix, _, name = part.rpartition(":")
        keyword, noun = _COMPONENT_KINDS[prefix]
        lines.append(f"{keyword} {name}")
        kinds[name] = noun
    clauses = []
    for link in links:
        match = re.match(r"^(\w+) > (\w+): (.+)$", link)
        assert match, link
        a, b, label = match.groups()
        lines.append(f"{a} --> {b} : {label}")
        clauses.append(f"{a} talks to {b} over {label}")
    grouped = {noun: [name for name, kind in kinds.items() if kind == noun] for noun in dict.fromkeys(kinds.values())}
    inventory = "; ".join(f"{noun}{'s' if len(names) > 1 else ''} {listing(names)}" for noun, names in grouped.items())
    patterns = [
        f"Draw a component diagram of {title} with {inventory}. {'. '.join(clauses)}.",
        f"Component diagram for {title}: {inventory}; {', '.join(clauses)}.",
    ]
    return Pair("component", patterns[index % 2], uml(*lines))


# 7. Deployment: ("title", ["actor:User", "node:WebServer(artifact:ShopApp)", "cloud:CDN", ...], ["A > B: label"])
def deployment(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, elements, links = spec
    lines, sentences = [], []
    for element in elements:
        kind, _, rest = element.partition(":")
        name, _, inner = rest.partition("(")
        if inner:
            inner_kind, _, inner_name = inner.rstrip(")").partition(":")
            lines += [f"{kind} {name} {{", f"  {inner_kind} {inner_name}", "}"]
            sentences.append(f"{inner_kind} {inner_name} runs on {kind} {name}")
        else:
            lines.append(f"{kind} {name}")
            sentences.append(f"there is {a_or_an(kind)} {name}")
    clauses = []
    for link in links:
        match = re.match(r"^(\w+) > (\w+)(?:: (.+))?$", link)
        assert match, link
        a, b, label = match.groups()
        lines.append(f"{a} --> {b}" + (f" : {label}" if label else ""))
        clauses.append(f"{a} connects to {b}" + (f" over {label}" if label else ""))
    patterns = [
        f"Draw a deployment diagram of {title}: {'; '.join(sentences)}. {'. '.join(clauses)}.",
        f"Deployment diagram for {title}. {'. '.join(cap(s) for s in sentences)}. {'; '.join(clauses)}.",
    ]
    return Pair("deployment", patterns[index % 2], uml(*lines))


# 8. Object: ("title", ["name: field=value, field=value", ...], ["a > b: label"])
def objects(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, items, links = spec
    lines, sentences = [], []
    for item in items:
        name, _, body = item.partition(":")
        fields = [f.strip().split("=", 1) for f in body.split(",") if f.strip()]
        lines.append(f"object {name.strip()} {{")
        lines += [f"  {field} = {value}" for field, value in fields]
        lines.append("}")
        sentences.append(f"{name.strip()} with " + listing([f"{field} {value}" for field, value in fields]))
    clauses = []
    for link in links:
        match = re.match(r"^(\w+) > (\w+): (.+)$", link)
        assert match, link
        a, b, label = match.groups()
        lines.append(f"{a} --> {b} : {label}")
        clauses.append(f'object {a} is linked to {b} by "{label}"')
    patterns = [
        f"Draw an object diagram of {title}: objects {'; '.join(sentences)}. {'. '.join(cap(c) for c in clauses)}.",
        f"Object diagram showing {title}. Objects: {'; '.join(sentences)}. Links: {'; '.join(clauses)}.",
    ]
    return Pair("object", patterns[index % 2], uml(*lines))


# 9. ER: ("title", ["Table: column type, column type", ...], ["A 1-n B: verb", "A 1-1 B: verb", "A n-n B: verb"])
_CARDINALITY = {
    "1-n": ("||--o{", "one {a} {verb} many {b}"),
    "1-1": ("||--||", "one {a} {verb} exactly one {b}"),
    "1-01": ("||--o|", "one {a} {verb} at most one {b}"),
    "n-n": ("}o--o{", "many {a} {verb} many {b}"),
}


def entity(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, tables, relations = spec
    lines, sentences = [], []
    for table in tables:
        name, _, body = table.partition(":")
        columns = [c.split() for c in body.split(",") if c.strip()]
        lines += [f"entity {name.strip()} {{", "  * id : int", "  --"]
        lines += [f"  {column} : {kind}" for column, kind in columns]
        lines.append("}")
        sentences.append(
            f"{name.strip()} has an id key and " + listing([f"{column} ({kind})" for column, kind in columns])
        )
    clauses = []
    for relation in relations:
        match = re.match(r"^(\w+) ([1n]-[01n]+) (\w+): (.+)$", relation)
        assert match, relation
        a, cardinality, b, verb = match.groups()
        arrow, phrase = _CARDINALITY[cardinality]
        lines.append(f"{a} {arrow} {b} : {verb}")
        clauses.append(phrase.format(a=a, b=b, verb=verb))
    patterns = [
        f"Draw an entity relationship diagram for {title}. {'. '.join(sentences)}. "
        f"{'. '.join(cap(c) for c in clauses)}.",
        f"ER diagram of {title}: {'; '.join(sentences)}; {'; '.join(clauses)}.",
    ]
    return Pair("er", patterns[index % 2], uml(*lines))


# 10. Gantt: ("title", "2026-03-02", ["Task: 5", "Task: 10 after Other", "!Milestone after Task"])
def gantt(index: int, spec: tuple[str, str, list[str]]) -> Pair:
    title, start, tasks = spec
    lines, clauses = [f"Project starts {start}"], []
    for task in tasks:
        if task.startswith("!"):
            milestone, _, after = task[1:].partition(" after ")
            lines.append(f"[{milestone}] happens at [{after}]'s end")
            clauses.append(f'the milestone "{milestone}" is reached when "{after}" ends')
            continue
        name, _, rest = task.partition(":")
        days, _, after = rest.strip().partition(" after ")
        lines.append(f"[{name}] lasts {days} days")
        if after:
            lines.append(f"[{name}] starts at [{after}]'s end")
            clauses.append(f'"{name}" takes {days} days and starts after "{after}"')
        else:
            clauses.append(f'"{name}" takes {days} days')
    patterns = [
        f"Make a Gantt chart for {title} starting on {start}: {'; '.join(clauses)}.",
        f"Gantt chart of {title}. The project starts {start}. {'. '.join(cap(c) for c in clauses)}.",
    ]
    return Pair("gantt", patterns[index % 2], uml(*lines, kind="gantt"))


# 11-12. Mind map and WBS: ("Root: Branch(Leaf, Leaf); Branch; ...")
def _tree(spec: str) -> tuple[str, list[tuple[str, list[str]]]]:
    root, _, rest = spec.partition(":")
    branches = []
    for branch in rest.split(";"):
        name, _, leaves = branch.strip().partition("(")
        branches.append((name.strip(), [leaf.strip() for leaf in leaves.rstrip(")").split(",") if leaf.strip()]))
    return root.strip(), branches


def _tree_lines(root: str, branches: list[tuple[str, list[str]]]) -> list[str]:
    lines = [f"* {root}"]
    for name, leaves in branches:
        lines.append(f"** {name}")
        lines += [f"*** {leaf}" for leaf in leaves]
    return lines


def _branch_words(branches: list[tuple[str, list[str]]]) -> list[str]:
    return [f"{name} ({listing(leaves)})" if leaves else name for name, leaves in branches]


def mindmap(index: int, spec: str) -> Pair:
    root, branches = _tree(spec)
    patterns = [
        f"Make a mind map about {root} with the branches {listing(_branch_words(branches))}.",
        f"Mind map: {root} in the centre; branches {'; '.join(_branch_words(branches))}.",
    ]
    return Pair("mindmap", patterns[index % 2], uml(*_tree_lines(root, branches), kind="mindmap"))


def wbs(index: int, spec: str) -> Pair:
    root, branches = _tree(spec)
    patterns = [
        f"Create a work breakdown structure for {root} with the parts {listing(_branch_words(branches))}.",
        f"WBS for {root}: {'; '.join(_branch_words(branches))}.",
    ]
    return Pair("wbs", patterns[index % 2], uml(*_tree_lines(root, branches), kind="wbs"))


# 13. Timing: ("title", ["robust Light=traffic light", "concise Car=car"], ["0: Light Red, Car Waiting", ...])
def timing(index: int, spec: tuple[str, list[str], list[str]]) -> Pair:
    title, signals, moments = spec
    lines, labels = [], {}
    for signal in signals:
        kind, _, rest = signal.partition(" ")
        name, _, label = rest.partition("=")
        lines.append(f'{kind} "{cap(label)}" as {name}')
        labels[name] = label
    clauses = []
    for moment in moments:
        time, _, changes = moment.partition(":")
        lines.append(f"@{time.strip()}")
        parts = []
        for change in changes.split(","):
            name, value = change.split()
            lines.append(f"{name} is {value}")
            parts.append(f"the {labels[name]} is {value}")
        clauses.append(f"at {time.strip()} {listing(parts)}")
    kinds = listing([f"the {labels[s.split()[1].split('=')[0]]} ({s.split()[0]})" for s in signals])
    patterns = [
        f"Draw a timing diagram of {title} with {kinds}: {'; '.join(clauses)}.",
        f"Timing diagram for {title}. Signals: {kinds}. {'. '.join(cap(c) for c in clauses)}.",
    ]
    return Pair("timing", patterns[index % 2], uml(*lines))


WRITERS: dict[str, Callable[[int, Any], Pair]] = {
    "sequence": sequence,
    "class": klass,
    "usecase": usecase,
    "activity": activity,
    "state": state,
    "component": component,
    "deployment": deployment,
    "object": objects,
    "er": entity,
    "gantt": gantt,
    "mindmap": mindmap,
    "wbs": wbs,
    "timing": timing,
}
