"""JSONL text datasets: prompt/completion, OpenAI chat messages, or text/label — checked line by line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genfoundry.errors import Unprocessable

FORMATS = ("prompt_completion", "chat", "classification")
CHAT_ROLES = ("system", "user", "assistant", "tool", "developer")
MAX_ERRORS_REPORTED = 20


@dataclass(frozen=True)
class JsonlLimits:
    max_line_bytes: int = 1024 * 1024
    max_lines: int = 1_000_000


@dataclass
class JsonlReport:
    format: str | None = None
    lines: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)

    def error(self, line: int, message: str) -> None:
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append({"line": line, "message": message})


def _format_of(record: dict[str, Any]) -> str | None:
    if "messages" in record:
        return "chat"
    if "prompt" in record or "completion" in record:
        return "prompt_completion"
    if "text" in record or "label" in record:
        return "classification"
    return None


def _check_record(record: dict[str, Any], fmt: str) -> str | None:
    """The problem with one record of format `fmt`, or None."""
    expected = {
        "prompt_completion": {"prompt", "completion"},
        "chat": {"messages"},
        "classification": {"text", "label"},
    }[fmt]
    missing = sorted(expected - record.keys())
    if missing:
        return f"missing {', '.join(repr(k) for k in missing)}"
    extra = sorted(set(record) - expected - {"weight", "metadata"})
    if extra:
        return f"unexpected keys {', '.join(repr(k) for k in extra)} for the {fmt} format"
    if fmt == "chat":
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty list"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
                return f"messages[{i}] needs a role among {', '.join(CHAT_ROLES)}"
            if not isinstance(message.get("content"), str):
                return f"messages[{i}].content must be a string"
        if not any(m["role"] == "assistant" for m in messages):
            return "a chat example needs at least one assistant message"
        return None
    for key in sorted(expected):
        value = record[key]
        if not isinstance(value, str) or (key != "prompt" and not value.strip()):
            return f"{key!r} must be a non-empty string"
    return None


def validate_jsonl(path: Path, *, limits: JsonlLimits | None = None) -> JsonlReport:
    """Check every line; raises `Unprocessable` whose details list the bad lines (the first 20)."""
    limits = limits or JsonlLimits()
    report = JsonlReport()
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(limits.max_line_bytes + 1)
            if not raw:
                break
            number += 1
            if len(raw) > limits.max_line_bytes and not raw.endswith(b"\n"):
                report.error(number, f"line is longer than {limits.max_line_bytes} bytes")
                while raw and not raw.endswith(b"\n"):  # skip the rest of the over-long line
                    raw = handle.readline(limits.max_line_bytes + 1)
                continue
            if number > limits.max_lines:
                report.error(number, f"more than {limits.max_lines} lines")
                break
            _check_line(raw, number, report)
    if report.lines == 0 and not report.errors:
        report.error(0, "the file has no examples")
    if report.errors:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise Unprocessable(
            f"invalid JSONL: line {first['line']}: {first['message']}{more}",
            param="file",
            details={"errors": report.errors},
        )
    return report


def _check_line(raw: bytes, number: int, report: JsonlReport) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.error(number, f"not valid UTF-8 (byte {exc.start})")
        return
    if not text.strip():
        return
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        report.error(number, f"not valid JSON: {exc.msg} at column {exc.colno}")
        return
    if not isinstance(record, dict):
        report.error(number, "each line must be a JSON object")
        return
    fmt = _format_of(record)
    if fmt is None:
        report.error(number, "expected {prompt, completion}, {messages} or {text, label}")
        return
    if report.format is None:
        report.format = fmt
    elif fmt != report.format:
        report.error(number, f"this line is {fmt} but the file started as {report.format}")
        return
    problem = _check_record(record, fmt)
    if problem is not None:
        report.error(number, problem)
        return
    report.lines += 1
    if fmt == "classification":
        label = record["label"]
        report.labels[label] = report.labels.get(label, 0) + 1
