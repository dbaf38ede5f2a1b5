"""What a job function may use, in whichever process it runs: settings, the database, the store, the catalog.

A job's own process opens only these (no engines, no migrations, no services), and each kind's function builds
the few things it needs from them; what is costly to build (a captioner, an encoder) is kept per process in
`cached`, so jobs on the thread executor share it with the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import Catalog, open_catalog
from genfoundry.config import Settings
from genfoundry.db.session import make_engine, make_session_factory
from genfoundry.storage import ArtifactStore, open_store

T = TypeVar("T")


@dataclass
class JobEnv:
    """`settings` has the device and dtype already resolved, so a job need not import torch to find them."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: ArtifactStore
    catalog: Catalog
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """The object stored under `key`, built by `build` on first use (once, even from several threads)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            value: T = self._cache[key]
            return value


def open_job_env(settings: Settings) -> tuple[JobEnv, Callable[[], None]]:
    """A job process's environment and what closes it; the server has migrated the database already."""
    engine = make_engine(settings.resolved_database_url)
    env = JobEnv(
        settings=settings,
        sessions=make_session_factory(engine),
        store=open_store(settings),
        catalog=open_catalog(settings),
    )
    return env, engine.dispose
