"""Identifiers we generate: a resource prefix plus random characters, never text from input."""

from __future__ import annotations

import re
import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def slug(text: str, *, max_length: int = 48) -> str:
    """Lowercase ASCII letters, digits and dashes from `text`; 'adapter' when nothing usable remains."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_length].strip("-")
    return cleaned or "adapter"
