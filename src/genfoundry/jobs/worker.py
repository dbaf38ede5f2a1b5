"""A job's own process: `python -m genfoundry.jobs.worker JOB_ID ATTEMPT WORKER_ID --kind KIND --function M:F`.

Started by the subprocess executor with the server's settings in the environment. It opens the database, the
artifact store and the catalog (`JobEnv`), imports the kind's function by name and runs the attempt; whatever else
the job needs, its function builds.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from genfoundry.config import Settings
from genfoundry.jobs.context import JobRun, run_attempt
from genfoundry.jobs.env import open_job_env
from genfoundry.jobs.executors import SETTINGS_ENV
from genfoundry.jobs.kinds import JobKind
from genfoundry.library_noise import quiet_unless_verbose


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m genfoundry.jobs.worker", description=__doc__)
    parser.add_argument("job_id")
    parser.add_argument("attempt", type=int)
    parser.add_argument("worker_id")
    parser.add_argument("--kind", required=True)
    parser.add_argument("--function", required=True, help="importable 'package.module:function'")
    parser.add_argument("--on-finish", default=None, help="importable 'package.module:function'")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_unless_verbose()  # this process's output is the job's log file; everything shows under `serve -v`
    # The runner's pid, read before anything slow: if it changes, the runner died and this process must stop.
    parent_pid = os.getppid()
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    env, close = open_job_env(settings)
    try:
        run = JobRun(
            job_id=args.job_id,
            attempt=args.attempt,
            worker_id=args.worker_id,
            kind=JobKind(args.kind, args.function, args.on_finish),
        )
        run_attempt(env=env, run=run, heartbeat_s=settings.jobs.heartbeat_s, parent_pid=parent_pid)
    finally:
        close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
