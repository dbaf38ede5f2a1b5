"""Background priority: engine work submitted inside `background_priority()` yields to interactive requests.

A base's worker serves every waiting interactive request before a background one, and a background job takes no
place in the bounded queue (it never makes an interactive request see a full queue). Batches (/v1/batches) run
their lines this way, one at a time, so an interactive request waits at most for the one background job running.
A context variable carries the flag, so the services' own code paths (plan, run, record) are the interactive ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_BACKGROUND: ContextVar[bool] = ContextVar("genfoundry_background_priority", default=False)


@contextmanager
def background_priority() -> Iterator[None]:
    """Engine jobs submitted in this context (and in tasks and threads started from it) run in the background."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def in_background() -> bool:
    return _BACKGROUND.get()
