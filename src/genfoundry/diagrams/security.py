"""Screening of PlantUML source before PlantUML sees it.

Preprocessor directives and built-in functions that read files, URLs or the environment are refused with the
line they are on (400), as are unknown directives; PlantUML itself then runs under its SANDBOX security
profile, with an empty environment and an empty working folder, as the second wall. Control characters and lone
surrogates are refused too: Java's line splitting and trimming treat them differently from Python's, which would
let a directive hide from this screen (and a surrogate cannot be sent to PlantUML at all).

A line is a directive for this screen when its first character that shows something is `!`, whatever invisible
characters come before it (Unicode's C* and Z* categories: format characters such as U+FEFF or U+200B, spaces such
as U+00A0, controls, unassigned code points). PlantUML 1.2026.2 skips one U+FEFF and then spaces and tabs before a
directive (measured over every code point); the screen drops that U+FEFF as PlantUML does, and refuses a directive
behind any other invisible character, so no line is a directive to PlantUML and plain text to the screen, in this
PlantUML version or one that skips more.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from genfoundry.errors import Invalid, TooLarge

# Directives that only compute (variables, conditions, loops, procedures): PlantUML evaluates them in memory.
_COMPUTING_DIRECTIVES = frozenset(
    {
        "define",
        "definelong",
        "enddefinelong",
        "undef",
        "if",
        "ifdef",
        "ifndef",
        "else",
        "elseif",
        "endif",
        "while",
        "endwhile",
        "foreach",
        "endfor",
        "procedure",
        "endprocedure",
        "function",
        "endfunction",
        "unquoted",
        "final",
        "local",
        "global",
        "return",
        "log",
        "assert",
        "startsub",
        "endsub",
    }
)
_REFUSED_DIRECTIVES = {
    "include": "it reads a file or URL on the server",
    "include_many": "it reads a file or URL on the server",
    "include_once": "it reads a file or URL on the server",
    "includeurl": "it fetches a URL from the server",
    "includesub": "it reads a file on the server",
    "includedef": "it reads a file on the server",
    "include_sprites": "it reads a file or URL on the server",
    "import": "it opens an archive on the server",
    "dump_memory": "it writes the preprocessor's memory to the server's log",
    "option": "it changes how the server runs PlantUML",
}
# Pragmas that only change layout; others (graphviz_dot, layout dot / elk, ...) choose programs or files.
_ALLOWED_PRAGMAS = {
    "teoz": frozenset({"true", "false"}),
    "useverticalif": frozenset({"on", "off"}),
    "layout": frozenset({"smetana"}),
}
_THEME_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DIRECTIVE = re.compile(r"^!\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>.*)$")
_ASSIGNMENT = re.compile(r"^\s*\??=")
# Built-in functions that read files, URLs or the environment, or call another function by a computed name.
_REFUSED_FUNCTIONS = re.compile(
    r"%\s*(getenv|load_json|file_exists|filedate|dirpath|filename|filename_no_extension|get_all_stdlib|"
    r"call_user_func|invoke_procedure|eval)\b",
    re.IGNORECASE,
)
_EMBEDDED_IMAGE = re.compile(r"<\s*img\s*:", re.IGNORECASE)
_SCRIPT_LINK = re.compile(r"\[\[[^\]]*\b(javascript|vbscript)\s*:", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# PlantUML drops one byte-order mark at the start of every line it reads (an editor's encoding mark).
_BYTE_ORDER_MARK = "\ufeff"
_INDENT = frozenset(" \t")


@dataclass(frozen=True)
class ScreenedSource:
    """Source ready for PlantUML; `line_offset` lines were added before the caller's first (a missing @startuml)."""

    text: str
    line_offset: int = 0

    @property
    def caller_lines(self) -> int:
        return self.text.count("\n") + 1 - 2 * self.line_offset


def _refuse(line: int, construct: str, reason: str) -> Invalid:
    return Invalid(
        f"line {line}: {construct} is not allowed: {reason}",
        param="plantuml",
        code="plantuml_not_allowed",
        details={"line": line, "directive": construct},
    )


def _shows_nothing(char: str) -> bool:
    """Whitespace, or a control, format, surrogate, private-use, unassigned or separator code point."""
    return char.isspace() or unicodedata.category(char)[0] in "CZ"


def _split_invisible_prefix(line: str) -> tuple[str, str]:
    """The invisible characters a line starts with, and the rest from its first visible character."""
    end = 0
    while end < len(line) and _shows_nothing(line[end]):
        end += 1
    return line[:end], line[end:]


def _check_indent(line: int, prefix: str, directive: str) -> None:
    """Refuse an allowed directive indented with anything but spaces and tabs (PlantUML reads those lines apart)."""
    hidden = next((char for char in prefix if char not in _INDENT), None)
    if hidden is None:
        return
    name = unicodedata.name(hidden, "unnamed")
    raise Invalid(
        f"line {line}: invisible character U+{ord(hidden):04X} ({name}) before {directive} is not allowed: "
        "indent directives with spaces or tabs only",
        param="plantuml",
        code="plantuml_not_allowed",
        details={"line": line, "directive": directive, "character": f"U+{ord(hidden):04X}"},
    )


def _check_directive(line: int, stripped: str) -> str:
    """Refuse a directive outside the allow-list; return the allowed one's name (`!define`, `!$x`)."""
    match = _DIRECTIVE.match(stripped)
    if match is None:
        if stripped.startswith("!$") or stripped == "!":
            return stripped.split()[0]  # `!$name = value`: a variable
        raise _refuse(line, stripped.split()[0], "unknown preprocessor directive")
    name, rest = match.group("name").lower(), match.group("rest")
    directive = f"!{match.group('name')}"
    if name in _REFUSED_DIRECTIVES:
        raise _refuse(line, directive, _REFUSED_DIRECTIVES[name])
    if name in _COMPUTING_DIRECTIVES:
        return directive
    if name == "pragma":
        words = rest.split()
        key = words[0].lower() if words else ""
        value = " ".join(words[1:]).lower()
        if key in _ALLOWED_PRAGMAS and value in _ALLOWED_PRAGMAS[key]:
            return directive
        raise _refuse(line, f"!pragma {' '.join(words)}".strip(), "only teoz, useVerticalIf and layout smetana")
    if name == "theme":
        words = rest.split()
        if len(words) == 1 and _THEME_NAME.match(words[0]):
            return directive  # a theme bundled in PlantUML; `!theme x from <place>` reads files or URLs
        raise _refuse(line, f"!theme {rest.strip()}", "only a bundled theme by name")
    if _ASSIGNMENT.match(rest):
        return directive  # `!name = value`: a variable
    raise _refuse(line, directive, "unknown preprocessor directive")


def screen_source(source: str, *, max_chars: int, max_lines: int) -> ScreenedSource:
    """Check `source` against the size caps and the refused constructs; wrap it in @startuml/@enduml if bare."""
    if len(source) > max_chars:
        raise TooLarge(f"plantuml is {len(source)} characters, over the {max_chars} limit", param="plantuml")
    if not source.strip():
        raise Invalid("plantuml is empty", param="plantuml")
    control = _CONTROL.search(source)
    if control is not None:
        line = source.count("\n", 0, control.start()) + 1
        kind = "lone surrogate" if unicodedata.category(control.group()) == "Cs" else "control character"
        raise Invalid(
            f"line {line}: {kind} U+{ord(control.group()):04X} is not allowed",
            param="plantuml",
            code="plantuml_not_allowed",
            details={"line": line},
        )
    lines = [line.removeprefix(_BYTE_ORDER_MARK) for line in _LINE_BREAK.split(source)]
    if len(lines) > max_lines:
        raise TooLarge(f"plantuml has {len(lines)} lines, over the {max_lines} limit", param="plantuml")
    has_start = False
    for number, raw in enumerate(lines, start=1):
        has_start = has_start or raw.strip().lower().startswith("@start")
        prefix, visible = _split_invisible_prefix(raw)
        if visible.startswith("!"):
            _check_indent(number, prefix, _check_directive(number, visible.rstrip()))
        function = _REFUSED_FUNCTIONS.search(raw)
        if function is not None:
            name = f"%{function.group(1).lower()}()"
            raise _refuse(number, name, "it reads the server's files, URLs or environment, or calls by name")
        if _EMBEDDED_IMAGE.search(raw):
            raise _refuse(number, "<img:...>", "it reads an image file or URL on the server")
        if _SCRIPT_LINK.search(raw):
            raise _refuse(number, "a javascript: link", "it would run script where the SVG is shown")
    text = "\n".join(lines)
    if not has_start:
        return ScreenedSource(f"@startuml\n{text}\n@enduml", line_offset=1)
    return ScreenedSource(text)
