"""A job's own process: `python -m genfoundry.jobs.worker JOB_ID ATTEMPT WORKER_ID --kind KIND [--function M:F]`.

Started by the subprocess executor with the server's settings in the environment. Kinds given as importable
strings run without building any services (fast); the others are found in the services `build_services` makes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.config import Settings
from genfoundry.jobs.context import JobRun, run_attempt
from genfoundry.jobs.executors import SETTINGS_ENV
from genfoundry.jobs.kinds import JobKind


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m genfoundry.jobs.worker", description=__doc__)
    parser.add_argument("job_id")
    parser.add_argument("attempt", type=int)
    parser.add_argument("worker_id")
    parser.add_argument("--kind", required=True)
    parser.add_argument("--function", default=None, help="importable 'package.module:function'")
    parser.add_argument("--on-finish", default=None, help="importable 'package.module:function'")
    return parser.parse_args(argv)


def open_kind(
    settings: Settings, args: argparse.Namespace
) -> tuple[JobKind, sessionmaker[Session], Callable[[], None]]:
    """The job's kind, a session factory, and what to close afterwards."""
    if args.function is not None:
        from genfoundry.db.session import make_engine, make_session_factory

        engine = make_engine(settings.resolved_database_url)
        return JobKind(args.kind, args.function, args.on_finish), make_session_factory(engine), engine.dispose
    from genfoundry.services import build_services

    services = build_services(settings)
    return services.jobs.kind(args.kind), services.sessions, services.close


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The runner's pid, read before anything slow: if it changes, the runner died and this process must stop.
    parent_pid = os.getppid()
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    kind, sessions, close = open_kind(settings, args)
    try:
        run = JobRun(job_id=args.job_id, attempt=args.attempt, worker_id=args.worker_id, kind=kind)
        run_attempt(sessions=sessions, run=run, heartbeat_s=settings.jobs.heartbeat_s, parent_pid=parent_pid)
    finally:
        close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
