"""Job kinds: a name mapped to its function and finisher, as callables or importable "module:function" strings.

A job's process must find its function again. Kinds registered by `build_services` are rebuilt there from the
settings; kinds registered as strings (plugins, tests) are imported by name, with no services built at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from genfoundry.db.tables import Job
    from genfoundry.jobs.context import JobContext

JobFunction = Callable[["JobContext"], dict[str, Any]]
# Runs in the transaction that makes the job final (session, the job's final row): it must not commit.
Finisher = Callable[["Session", "Job"], None]


def load_target(target: str) -> Any:
    """The object a "package.module:attribute" string names."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"job target {target!r} is not of the form 'package.module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"job target {target!r} is not callable")
    return obj


@dataclass(frozen=True)
class JobKind:
    """What runs a job of this kind, and what runs as it ends (once, in the transaction writing its final status)."""

    name: str
    function: str  # "package.module:function" taking the JobContext
    on_finish: str | None = None  # "package.module:function" taking (session, job)
    resumable: bool = False  # a cancelled or failed job may be re-queued to go on from its last checkpoint
    uses_device: bool = True  # False: network or disk work (downloads) that takes a CPU slot, not a device slot
    # True: runs on a thread of the server, through the server's services and engines (batches), in a server slot
    in_server: bool = False

    @property
    def lane(self) -> str:
        """Which slots the kind's jobs take: "server", "device" or "cpu"."""
        return "server" if self.in_server else "device" if self.uses_device else "cpu"

    def resolve_function(self) -> JobFunction:
        fn: JobFunction = load_target(self.function)
        return fn

    def resolve_finisher(self) -> Finisher | None:
        if self.on_finish is None:
            return None
        fn: Finisher = load_target(self.on_finish)
        return fn
