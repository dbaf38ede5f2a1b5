"""What a PlantUML render tells: syntax errors with their line, the diagram type and the image's size.

PlantUML's HTTP server (and plantuml-server) put a syntax error in the `X-PlantUML-Diagram-Error` and
`X-PlantUML-Diagram-Error-Line` headers (the line counts from 1 in the source sent), the diagram's size before
PLANTUML_LIMIT_SIZE clipping in `X-PlantUML-Diagram-Width` / `-Height`, and the type in the SVG's
`data-diagram-type` attribute.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from genfoundry.errors import GenfoundryError

DiagramFormat = Literal["png", "svg"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_ROOT = re.compile(rb"<svg\b[^>]*>", re.DOTALL)
_SVG_TYPE = re.compile(rb'data-diagram-type="([A-Za-z_]+)"')


class RendererUnavailable(GenfoundryError):
    """PlantUML could not be started or reached (no Java runtime, no jar, a server that does not answer)."""

    status_code = 503
    error_type = "server_error"
    code = "renderer_unavailable"


@dataclass(frozen=True)
class DiagramError:
    """A syntax error PlantUML reported; `line` counts from 1 in the caller's source (None when unknown)."""

    line: int | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "message": self.message}


@dataclass(frozen=True)
class SyntaxReport:
    valid: bool
    diagram_type: str | None
    errors: list[DiagramError] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedDiagram:
    data: bytes
    format: DiagramFormat
    width: int
    height: int
    diagram_type: str | None
    render_time_s: float

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


def _svg_length(root: bytes, name: bytes) -> int:
    match = re.search(rb"\s" + name + rb'="([0-9.]+)(px)?"', root)
    return math.ceil(float(match.group(1))) if match else 0


def image_size(data: bytes, fmt: DiagramFormat) -> tuple[int, int]:
    """Width and height in pixels from the PNG header or the SVG root element; (0, 0) when not found."""
    if fmt == "png":
        if data[:8] != _PNG_SIGNATURE or len(data) < 24:
            return 0, 0
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    root = _SVG_ROOT.search(data[:4096])
    if root is None:
        return 0, 0
    return _svg_length(root.group(), b"width"), _svg_length(root.group(), b"height")


def diagram_type(data: bytes, fmt: DiagramFormat) -> str | None:
    """PlantUML's name for the diagram's type (`sequence`, `class`, `description`, `mindmap`...), from an SVG."""
    if fmt != "svg":
        return None
    match = _SVG_TYPE.search(data[:4096])
    return match.group(1).decode("ascii").lower() if match else None


def _header_int(headers: Mapping[str, str], name: str) -> int:
    value = headers.get(name, "")
    return int(value) if value.strip().isdigit() else 0


def declared_size(headers: Mapping[str, str]) -> tuple[int, int]:
    """The diagram's size as PlantUML laid it out, before any clipping to PLANTUML_LIMIT_SIZE."""
    return _header_int(headers, "x-plantuml-diagram-width"), _header_int(headers, "x-plantuml-diagram-height")


def syntax_errors(headers: Mapping[str, str], *, line_offset: int, line_count: int) -> list[DiagramError]:
    """The error PlantUML reported in the response headers, its line mapped back to the caller's source."""
    message = headers.get("x-plantuml-diagram-error")
    if message is None:
        if headers.get("x-plantuml-diagram-description", "").strip().lower() == "(error)":
            return [DiagramError(line=None, message="PlantUML could not read this diagram")]
        if headers.get("x-plantuml-diagram-width") == "0" and headers.get("x-plantuml-diagram-height") == "0":
            # PlantUML failed while drawing and drew its crash report instead (an empty diagram is 6×6).
            return [DiagramError(line=None, message="PlantUML failed while drawing this diagram")]
        return []
    raw_line = headers.get("x-plantuml-diagram-error-line", "")
    line: int | None = None
    if raw_line.strip().isdigit():
        # A missing @enduml is reported after the last line; clamp into the caller's source.
        line = min(max(1, int(raw_line) - line_offset), max(1, line_count))
    return [DiagramError(line=line, message=message.strip() or "syntax error")]


def structure_error(text: str, *, line_offset: int) -> DiagramError | None:
    """The error for a first `@start...` block that no `@end...` line closes (PlantUML's server fails on it) or
    that holds nothing (PlantUML draws an empty 6×6 image and calls it valid)."""
    lines = [line.strip().lower() for line in text.split("\n")]
    start = next((number for number, line in enumerate(lines) if line.startswith("@start")), None)
    if start is None:
        return None
    end = next((number for number in range(start + 1, len(lines)) if lines[number].startswith("@end")), None)
    if end is None:
        last = max(1, len(lines) - 2 * line_offset)
        return DiagramError(line=last, message=f"no @end line closes the @start on line {start + 1 - line_offset}")
    if not any(line and not line.startswith("'") for line in lines[start + 1 : end]):
        return DiagramError(line=start + 1 - line_offset or 1, message="the diagram is empty")
    return None
