"""Screening of PlantUML source before PlantUML sees it (no Java needed)."""

from __future__ import annotations

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
