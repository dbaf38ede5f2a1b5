"""Prompt formats: how messages become the text a causal LM sees, the same in training and in serving.

A chat model renders through its tokenizer's chat template (or the template stored with an adapter); a base
model uses PLAIN_TEMPLATE, one instruction/response pair per turn. Every adapter carries its `TextFormat` in
`genfoundry_text.json`, so it is served with exactly the format it was trained with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genfoundry.errors import Invalid

PROMPT_FORMATS = ("chat_template", "plain")
PLAIN_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"
TEXT_FORMAT_FILE = "genfoundry_text.json"
# Separates turns of a multi-turn conversation in the plain format (after the assistant's end token).
PLAIN_TURN_SEPARATOR = "\n\n"
_PLAIN_ROLES = ("system", "developer", "user", "assistant")
_TOOL_FIELDS = ("tool_calls", "tool_call_id")


@dataclass(frozen=True)
class TextFormat:
    """How an adapter's (or a base's) prompts are rendered; stored with every text adapter."""

    base_id: str
    prompt_format: str  # "chat_template" | "plain"
    chat_template: str | None = None  # the jinja template trained with; None: the tokenizer's own
    plain_template: str = PLAIN_TEMPLATE

    def __post_init__(self) -> None:
        if self.prompt_format not in PROMPT_FORMATS:
            raise Invalid(
                f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}; got {self.prompt_format!r}",
                param="prompt_format",
            )
        check_plain_template(self.plain_template)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TextFormat:
        return cls(
            base_id=str(raw["base_id"]),
            prompt_format=str(raw["prompt_format"]),
            chat_template=raw.get("chat_template"),
            plain_template=str(raw.get("plain_template") or PLAIN_TEMPLATE),
        )

    def write(self, folder: Path) -> Path:
        """Write `folder/genfoundry_text.json`."""
        path = Path(folder) / TEXT_FORMAT_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> TextFormat:
        """Read `folder/genfoundry_text.json`; Invalid when it is missing or malformed."""
        path = Path(folder) / TEXT_FORMAT_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(raw)
        except FileNotFoundError:
            raise Invalid(f"{folder} has no {TEXT_FORMAT_FILE}", param="model") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise Invalid(f"{path.name} in {folder} is malformed: {exc}", param="model") from None


def check_plain_template(template: str) -> str:
    """A plain template holds `{prompt}` exactly once."""
    if not isinstance(template, str) or template.count("{prompt}") != 1:
        raise Invalid("plain_template must contain '{prompt}' exactly once", param="plain_template")
    return template


def render_prompt(prompt: str, *, template: str = PLAIN_TEMPLATE) -> str:
    """A plain (base-model) prompt: `template` with `{prompt}` replaced; the completion follows it directly."""
    return check_plain_template(template).replace("{prompt}", prompt)


def _role_and_content(message: Any) -> tuple[str, str]:
    """(role, text) of a message given as a mapping or an object with `role` / `content` attributes."""
    if isinstance(message, Mapping):
        role, content = message.get("role"), message.get("content")
    else:
        role, content = getattr(message, "role", None), getattr(message, "content", None)
    if content is None:
        content = ""
    if not isinstance(content, str):  # OpenAI content parts: keep the text ones
        content = "".join(
            str(part.get("text", "") if isinstance(part, Mapping) else getattr(part, "text", "") or "")
            for part in content
        )
    return str(role), content


def plain_turns(messages: Sequence[Any]) -> list[tuple[str, str | None]]:
    """The conversation as (prompt, reply) pairs for the plain format.

    System and user messages before an assistant message join (blank line between) into that turn's prompt;
    the last pair's reply is None when the conversation does not end with an assistant message.
    """
    turns: list[tuple[str, str | None]] = []
    pending: list[str] = []
    for index, message in enumerate(messages):
        role, content = _role_and_content(message)
        if role not in _PLAIN_ROLES:
            raise Invalid(
                f"messages[{index}]: the plain prompt format takes roles {', '.join(_PLAIN_ROLES)}; got {role!r}",
                param="messages",
            )
        if role == "assistant":
            turns.append(("\n\n".join(pending), content))
            pending = []
        else:
            pending.append(content)
    if pending:
        turns.append(("\n\n".join(pending), None))
    return turns


def render_plain_chat(
    messages: Sequence[Any], *, template: str = PLAIN_TEMPLATE, eos_token: str, add_generation_prompt: bool
) -> str:
    """A conversation in the plain format: per turn the rendered prompt, then the reply and `eos_token`.

    With `add_generation_prompt` the text ends with the last user turn's rendered prompt, ready to generate.
    """
    parts: list[str] = []
    for prompt, reply in plain_turns(messages):
        if reply is None:
            if add_generation_prompt:
                parts.append(render_prompt(prompt, template=template))
            break
        parts.append(render_prompt(prompt, template=template) + reply + eos_token + PLAIN_TURN_SEPARATOR)
    return "".join(parts)


def _as_dicts(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Role and text of each message, plus the tool fields (`tool_calls`, `tool_call_id`) of a mapping that has them."""
    out = []
    for message in messages:
        role, content = _role_and_content(message)
        extra = {key: message[key] for key in _TOOL_FIELDS if isinstance(message, Mapping) and key in message}
        out.append({"role": role, "content": content, **extra})
    return out


def render_chat(
    tokenizer: Any,
    messages: Sequence[Any],
    *,
    chat_template: str | None,
    add_generation_prompt: bool,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The conversation through `chat_template` (or the tokenizer's own) as text, not token ids; `tools` (OpenAI
    function definitions) are passed to the template, which renders them where it supports tools."""
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise Invalid(
            "this model has no chat template; it uses the plain prompt format (prompt_format 'plain')",
            param="model",
        )
    text = tokenizer.apply_chat_template(
        _as_dicts(messages),
        chat_template=template,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
        tools=list(tools) if tools else None,
    )
    return str(text)


def render_messages(
    text_format: TextFormat,
    tokenizer: Any,
    messages: Sequence[Any],
    *,
    add_generation_prompt: bool,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The conversation in `text_format`: the chat template (with `tools`), or the plain format with the
    tokenizer's EOS."""
    if text_format.prompt_format == "chat_template":
        return render_chat(
            tokenizer,
            messages,
            chat_template=text_format.chat_template,
            add_generation_prompt=add_generation_prompt,
            tools=tools,
        )
    return render_plain_chat(
        messages,
        template=text_format.plain_template,
        eos_token=str(getattr(tokenizer, "eos_token", None) or ""),
        add_generation_prompt=add_generation_prompt,
    )
