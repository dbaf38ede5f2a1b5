"""Screening of PlantUML source before PlantUML sees it (no Java needed)."""

from __future__ import annotations

import functools
import sys
import unicodedata

import pytest

from genfoundry.diagrams.security import screen_source
from genfoundry.errors import Invalid, TooLarge


def screen(source: str, *, max_chars: int = 10_000, max_lines: int = 100) -> str:
    return screen_source(source, max_chars=max_chars, max_lines=max_lines).text


@pytest.mark.parametrize(
    ("line", "directive"),
    [
        ("!include /etc/passwd", "!include"),
        ("  !include_many /etc/hosts", "!include_many"),
        ("!include_once ../secret.puml", "!include_once"),
        ("!INCLUDE /etc/passwd", "!INCLUDE"),
        ("! include /etc/passwd", "!include"),
        ("!includeurl http://169.254.169.254/latest/meta-data", "!includeurl"),
        ("!includesub /etc/passwd!BASIC", "!includesub"),
        ("!includedef /etc/passwd", "!includedef"),
        ("!include_sprites /tmp/sprites.puml", "!include_sprites"),
        ("!import /tmp/lib.zip", "!import"),
        ("!dump_memory", "!dump_memory"),
        ("!option handwritten true", "!option"),
        ("!pragma graphviz_dot /bin/sh", "!pragma graphviz_dot /bin/sh"),
        ("!pragma layout elk", "!pragma layout elk"),
        ("!theme spacelab from /etc", "!theme spacelab from /etc"),
        ("!frobnicate", "!frobnicate"),
        ('!$home = %getenv("HOME")', "%getenv()"),
        ('Alice -> Bob : %load_json("/etc/passwd")', "%load_json()"),
        ('Alice -> Bob : % GETENV("PATH")', "%getenv()"),
        ('!$f = %call_user_func("%get" + "env", "HOME")', "%call_user_func()"),
        ('Alice -> Bob : %eval("1")', "%eval()"),
        ("Alice -> Bob : <img:/etc/passwd>", "<img:...>"),
        ("Alice -> Bob : < IMG : http://example.com/a.png>", "<img:...>"),
        ("class A [[javascript:alert(1)]]", "a javascript: link"),
        ("class A [[{tip} JavaScript:alert(1)]]", "a javascript: link"),
    ],
)
def test_refused_constructs_name_the_directive_and_line(line: str, directive: str) -> None:
    with pytest.raises(Invalid) as caught:
        screen(f"@startuml\nAlice -> Bob : hi\n{line}\n@enduml")
    error = caught.value
    assert error.status_code == 400
    assert error.param == "plantuml"
    assert error.details == {"line": 3, "directive": directive}
    assert error.message.startswith(f"line 3: {directive} is not allowed")


@pytest.mark.parametrize(
    "line",
    [
        "!define COLOR red",
        "!$name = 'world'",
        "!local $x = 1",
        "!if $name == 'world'",
        "!endif",
        "!procedure $box($label)",
        "!endprocedure",
        "!pragma teoz true",
        "!pragma layout smetana",
        "!theme plain",
        "!log checked",
        "Alice -> Bob : 100% done",
    ],
)
def test_computing_directives_and_layout_pragmas_pass(line: str) -> None:
    text = screen(f"@startuml\n{line}\nAlice -> Bob : hi\n@enduml")
    assert line in text


@pytest.mark.parametrize(
    "hidden", ["\x01!include /etc/passwd", "\x0b!include /etc/passwd", "x\u2028!include /etc/passwd"]
)
def test_control_characters_cannot_hide_a_directive(hidden: str) -> None:
    with pytest.raises(Invalid) as caught:
        screen(f"@startuml\n{hidden}\n@enduml")
    assert caught.value.details == {"line": 2}
    assert "control character" in caught.value.message


@functools.cache
def invisible_characters() -> tuple[str, ...]:
    """Characters that can stand before a `!` unseen: every format (Cf) and space-separator (Zs) code point but the
    ASCII space, the C1 controls the screen lets through, a private-use and an unassigned code point."""
    every = (chr(code) for code in range(sys.maxunicode + 1))
    chosen = [char for char in every if unicodedata.category(char) in ("Cf", "Zs") and char != " "]
    c1_controls = [chr(code) for code in range(0x80, 0xA0) if code != 0x85]
    return (*chosen, *c1_controls, "\ue000", "\U000f0000", "\u0378")


def test_the_invisible_characters_cover_the_reported_ones() -> None:
    assert {"\ufeff", "\u200b", "\u2060", "\u00a0", "\u3000", "\u202e", "\U000e0001"} <= set(invisible_characters())


# Where a hidden character can sit: `{c}` is the invisible character, `{d}` the directive line.
POSITIONS = {
    "line start": "@startuml\nA -> B\n{c}{d}\n@enduml",
    "after spaces": "@startuml\nA -> B\n  {c}{d}\n@enduml",
    "between tab and space": "@startuml\nA -> B\n\t{c} {d}\n@enduml",
    "twice": "@startuml\nA -> B\n{c}{c}{d}\n@enduml",
    "before @startuml": "{c}{d}\n@startuml\nA -> B\n@enduml",
    "bare source": "A -> B\n{c}{d}",
}
POSITION_LINE = {"before @startuml": 1, "bare source": 2}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize(
    ("line", "directive"),
    [
        ("!include /etc/passwd", "!include"),
        ("!include <C4/C4_Context>", "!include"),
        ("!dump_memory", "!dump_memory"),
        ("!option handwritten true", "!option"),
        ("!pragma layout dot", "!pragma layout dot"),
        ("!theme spacelab from /etc", "!theme spacelab from /etc"),
    ],
)
def test_refused_directives_cannot_hide_behind_invisible_characters(position: str, line: str, directive: str) -> None:
    expected = {"line": POSITION_LINE.get(position, 3), "directive": directive}
    passed = []
    for char in invisible_characters():
        try:
            screen(POSITIONS[position].format(c=char, d=line))
        except Invalid as error:
            assert error.code == "plantuml_not_allowed" and error.details == expected, (f"U+{ord(char):04X}", error)
        else:
            passed.append(f"U+{ord(char):04X}")
    assert passed == []


@pytest.mark.parametrize("position", [name for name in POSITIONS if name != "bare source"])
@pytest.mark.parametrize(
    ("line", "directive"),
    [("!define X Y", "!define"), ("!pragma layout smetana", "!pragma"), ("!$x = 1", "!$x"), ("!theme plain", "!theme")],
)
def test_allowed_directives_behind_invisible_characters_are_refused(position: str, line: str, directive: str) -> None:
    """PlantUML reads such a line apart from this screen (as text, or failing); the user is told to indent plainly."""
    passed = []
    for char in invisible_characters():
        source = POSITIONS[position].format(c=char, d=line)
        if char == "\ufeff" and position in ("line start", "before @startuml"):
            continue  # one byte-order mark opening a line is dropped, as PlantUML drops it (next test)
        try:
            screen(source)
        except Invalid as error:
            code = f"U+{ord(char):04X}"
            assert error.code == "plantuml_not_allowed", (code, error)
            assert error.details == {"line": POSITION_LINE.get(position, 3), "directive": directive, "character": code}
            assert f"invisible character {code}" in error.message and "spaces or tabs" in error.message
        else:
            passed.append(f"U+{ord(char):04X}")
    assert passed == []


def test_a_byte_order_mark_opening_a_line_is_dropped_as_plantuml_drops_it() -> None:
    screened = screen_source(
        "\ufeff@startuml\n\ufeff!define GREETING hello\n\ufeff  !pragma teoz true\nA -> B : GREETING\n@enduml",
        max_chars=1000,
        max_lines=10,
    )
    assert screened.line_offset == 0
    assert screened.text == "@startuml\n!define GREETING hello\n  !pragma teoz true\nA -> B : GREETING\n@enduml"


@pytest.mark.parametrize(
    "line",
    [
        "Alice -> Bob : \U0001f469\u200d\U0001f4bb pairs",  # an emoji sequence joined by U+200D
        "Alice -> Bob : \u200f\u05e9\u05dc\u05d5\u05dd\u00a0ok",  # right-to-left mark, Hebrew, no-break space
        "\u200bAlice -> Bob : starts with a zero-width space",
        "\u00a0Alice -> Bob : 100%\u00a0!",
        "note left : x\ufeff!include is only text here",
    ],
)
def test_invisible_characters_in_text_are_kept(line: str) -> None:
    assert line in screen(f"@startuml\n{line}\n@enduml")


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        screen("@startuml\nA -> B : \ud83d\n@enduml")
    assert caught.value.code == "plantuml_not_allowed" and caught.value.details == {"line": 2}
    assert "lone surrogate U+D83D" in caught.value.message


def test_size_limits_are_413() -> None:
    with pytest.raises(TooLarge, match="characters"):
        screen("@startuml\n" + "A -> B\n" * 50 + "@enduml", max_chars=100)
    with pytest.raises(TooLarge, match="lines"):
        screen("@startuml\n" + "A -> B\n" * 200 + "@enduml", max_lines=100)


def test_empty_source_is_refused() -> None:
    with pytest.raises(Invalid, match="empty"):
        screen(" \n\t\n")


def test_bare_source_is_wrapped_and_line_endings_normalised() -> None:
    screened = screen_source("Alice -> Bob : hi\r\nBob --> Alice : ok\r", max_chars=1000, max_lines=10)
    assert screened.text == "@startuml\nAlice -> Bob : hi\nBob --> Alice : ok\n\n@enduml"
    assert screened.line_offset == 1
    assert screened.caller_lines == 3
    kept = screen_source("@startmindmap\n* root\n@endmindmap", max_chars=1000, max_lines=10)
    assert kept.line_offset == 0
    assert kept.text == "@startmindmap\n* root\n@endmindmap"
