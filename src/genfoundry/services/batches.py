"""Batches (`/v1/batches`): a JSONL file of requests run as one durable, low-priority job in the server's process.

Create checks the input file (the caller's, purpose `batch`, at most 50,000 lines) and the endpoint, and queues a
job of kind `batch` (`in_server`: it runs on a thread of the server, through the server's loaded engines, in a
server slot — never a device slot a training job needs). The job runs the lines one at a time in the background
(`services/batch_requests.py`, `inference/priority.py`), records each line's result as it ends (a resumed attempt
skips recorded lines), and writes the output and error files (JSONL files, purpose `batch_output`). A cancel stops
before the next line and still writes the files of what ran. The batch's own status follows the job: the job
function moves it to in_progress, finalizing or expired; the kind's finisher, in the transaction that ends the job,
to completed, cancelled or failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import Batch, Job, utcnow
from genfoundry.errors import Conflict, Invalid, NotFound
from genfoundry.jobs.context import JobCancelled, JobContext
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.runner import JobRunner
from genfoundry.repo import batches as batches_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo.ids import new_id
from genfoundry.schemas.batches import MAX_BATCH_REQUESTS, BatchCreate
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.batch_requests import BATCH_ENDPOINTS, BatchRequests, line_error
from genfoundry.services.datasets import DatasetService

BATCH_JOB_KIND = "batch"
BATCH_SERVICE_KEY = "batch-service"  # where the server keeps its `BatchService` in the job environment
COMPLETION_WINDOW = timedelta(hours=24)
ENDED = ("completed", "failed", "expired", "cancelled")


def input_lines(data: bytes) -> list[str]:
    """The request lines of a batch input file (blank lines skipped, as OpenAI does)."""
    return [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]


class BatchService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        datasets: DatasetService,
        runner: JobRunner,
        requests: BatchRequests,
    ) -> None:
        self.sessions = sessions
        self.datasets = datasets
        self.runner = runner
        self.requests = requests

    def create(self, *, owner_id: str, body: BatchCreate, base_url: str) -> Batch:
        if body.endpoint not in BATCH_ENDPOINTS:
            raise Invalid(f"endpoint must be one of {', '.join(BATCH_ENDPOINTS)}", param="endpoint")
        try:
            file = self.datasets.get(owner_id=owner_id, dataset_id=body.input_file_id)
        except NotFound:
            raise NotFound(f"No file with id '{body.input_file_id}'", param="input_file_id") from None
        if file.purpose != "batch":
            raise Invalid(
                f"input_file_id must name a file uploaded with purpose 'batch'; this one's purpose is '{file.purpose}'",
                param="input_file_id",
            )
        lines = input_lines(self.datasets.jsonl_content(owner_id=owner_id, dataset_id=file.id))
        if not lines:
            raise Invalid("the input file has no request lines", param="input_file_id")
        if len(lines) > MAX_BATCH_REQUESTS:
            raise Invalid(
                f"the input file has {len(lines)} requests; a batch takes at most {MAX_BATCH_REQUESTS}",
                param="input_file_id",
            )
        with self.sessions() as session:
            job = self.runner.submit(session=session, owner_id=owner_id, kind=BATCH_JOB_KIND, params={})
            batch = Batch(
                id=new_id("batch"),
                owner_id=owner_id,
                job_id=job.id,
                endpoint=body.endpoint,
                input_file_id=file.id,
                completion_window=body.completion_window,
                status="validating",
                meta=body.metadata,
                base_url=base_url,
                total=len(lines),
                completed=0,
                failed=0,
                expires_at=utcnow() + COMPLETION_WINDOW,
            )
            session.add(batch)
            job.params = {"batch_id": batch.id}
            session.commit()
        self.runner.start(job)
        return self.get(owner_id=owner_id, batch_id=batch.id)

    def get(self, *, owner_id: str, batch_id: str) -> Batch:
        with self.sessions() as session:
            return batches_repo.require_batch(session=session, owner_id=owner_id, batch_id=batch_id)

    def list_batches(self, *, owner_id: str, limit: int, after: str | None) -> tuple[list[Batch], bool]:
        with self.sessions() as session:
            return batches_repo.list_batches(session=session, owner_id=owner_id, limit=limit, after=after)

    def cancel(self, *, owner_id: str, batch_id: str) -> Batch:
        """Stop before the next line (the files keep what ran); cancelling a cancelling or cancelled batch again
        answers it as it is; a batch that ended otherwise is a Conflict."""
        batch = self.get(owner_id=owner_id, batch_id=batch_id)
        if batch.status in ("cancelling", "cancelled"):
            return batch
        with self.sessions() as session:
            moved = batches_repo.set_status(
                session=session,
                batch_id=batch.id,
                status="cancelling",
                from_statuses=("validating", "in_progress", "finalizing"),
            )
            session.commit()
        if not moved:
            batch = self.get(owner_id=owner_id, batch_id=batch_id)
            if batch.status in ("cancelling", "cancelled"):
                return batch
            raise Conflict(f"batch {batch.id} is {batch.status}; only a batch still running can be cancelled")
        self.runner.cancel(batch.job_id)
        return self.get(owner_id=owner_id, batch_id=batch_id)

    # -- the job's side ---------------------------------------------------------------------------

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Run the lines not yet recorded, one at a time, then write the output and error files."""
        batch_id = ctx.params["batch_id"]
        self._move(batch_id, "in_progress", ("validating",))
        with self.sessions() as session:
            batch = batches_repo.get_batch(session=session, batch_id=batch_id)
            done = batches_repo.done_lines(session=session, batch_id=batch_id)
        lines = input_lines(self.datasets.jsonl_content(owner_id=batch.owner_id, dataset_id=batch.input_file_id))
        expires_at = as_utc(batch.expires_at)
        for index, text in enumerate(lines):
            if index in done:
                continue
            if _cancel_requested(ctx):
                self._write_files(batch)
                raise JobCancelled
            if utcnow() >= expires_at:
                return self._expire(ctx, batch, lines, done)
            result = self.requests.run_line(
                text, line=index + 1, endpoint=batch.endpoint, owner_id=batch.owner_id, base_url=batch.base_url
            )
            _record(ctx, batch_id, index, result.ok, result.record)
            done.add(index)
            ctx.progress(len(done), len(lines))
        self._move(batch_id, "finalizing", ("in_progress",))
        return self._write_files(batch)

    def _move(self, batch_id: str, status: str, from_statuses: tuple[str, ...]) -> None:
        with self.sessions() as session:
            batches_repo.set_status(session=session, batch_id=batch_id, status=status, from_statuses=from_statuses)
            session.commit()

    def _expire(self, ctx: JobContext, batch: Batch, lines: list[str], done: set[int]) -> dict[str, Any]:
        """The completion window passed: the lines not run go to the error file as OpenAI's `batch_expired`."""
        for index, text in enumerate(lines):
            if index not in done:
                custom_id = _custom_id(text)
                message = "This request could not be executed before the completion window expired."
                _record(ctx, batch.id, index, False, line_error(custom_id, "batch_expired", message).record)
        written = self._write_files(batch)  # before the status: whoever reads it expired finds its files
        self._move(batch.id, "expired", ("in_progress",))
        return written

    def _write_files(self, batch: Batch) -> dict[str, Any]:
        """The output file (lines that ran) and the error file (lines that failed), each only when not empty."""
        with self.sessions() as session:
            outputs = batches_repo.line_records(session=session, batch_id=batch.id, ok=True)
            errors = batches_repo.line_records(session=session, batch_id=batch.id, ok=False)
        ids: dict[str, Any] = {"output_file_id": None, "error_file_id": None}
        for field, records, name in (("output_file_id", outputs, "output"), ("error_file_id", errors, "errors")):
            if records:
                data = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records).encode()
                file = self.datasets.store_jsonl(
                    owner_id=batch.owner_id, filename=f"{batch.id}_{name}.jsonl", data=data, purpose="batch_output"
                )
                ids[field] = file.id
        with self.sessions() as session:
            batches_repo.set_files(session=session, batch_id=batch.id, **ids)
            session.commit()
        return {**ids, "completed": len(outputs), "failed": len(errors)}


def as_utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _custom_id(text: str) -> object:
    try:
        request = json.loads(text)
    except ValueError:
        return None
    return request.get("custom_id") if isinstance(request, dict) else None


def _cancel_requested(ctx: JobContext) -> bool:
    """Whether the batch was cancelled; JobCancelled when this run lost the job (it must write nothing more)."""
    with ctx.sessions() as session:
        held, cancel = jobs_repo.run_state(
            session=session, job_id=ctx.job_id, attempt=ctx.attempt, worker_id=ctx.run.worker_id
        )
    if not held:
        raise JobCancelled
    return cancel


def _record(ctx: JobContext, batch_id: str, line: int, ok: bool, record: dict[str, Any]) -> None:
    """Record a line's result while this run holds the job (a run that lost it writes nothing)."""
    with ctx.sessions() as session:
        held, _cancel = jobs_repo.run_state(
            session=session, job_id=ctx.job_id, attempt=ctx.attempt, worker_id=ctx.run.worker_id
        )
        if not held:
            raise JobCancelled
        batches_repo.add_line(session=session, batch_id=batch_id, line=line, ok=ok, record=record)
        session.commit()


def _service_missing() -> BatchService:
    raise RuntimeError("batch jobs run in the server's process (an in_server job kind), which provides their service")


def run_batch(ctx: JobContext) -> dict[str, Any]:
    """The `batch` job function: the server's `BatchService` runs it."""
    service: BatchService = ctx.env.cached(BATCH_SERVICE_KEY, _service_missing)
    return service.run(ctx)


def finish_batch(session: Session, job: Job) -> None:
    """The `batch` kind's finisher: the batch's final status, in the transaction that ends its job."""
    batch = batches_repo.batch_of_job(session=session, job_id=job.id)
    if batch is None:
        return
    running = ("validating", "in_progress", "finalizing", "cancelling")
    if job.status == JobStatus.CANCELLED or (job.status == JobStatus.SUCCEEDED and batch.status == "cancelling"):
        # a cancel that came after the last line still ends the batch cancelled (its files hold every line)
        batches_repo.set_status(session=session, batch_id=batch.id, status="cancelled", from_statuses=running)
    elif job.status == JobStatus.SUCCEEDED:  # an expired batch stays expired
        batches_repo.set_status(session=session, batch_id=batch.id, status="completed", from_statuses=("finalizing",))
    elif batches_repo.set_status(session=session, batch_id=batch.id, status="failed", from_statuses=running):
        batch.errors = [{"code": "batch_failed", "message": job.error or "the batch's job failed"}]


def register_batch_jobs(runner: JobRunner, env: JobEnv, service: BatchService) -> None:
    """The `batch` kind runs in the server's process (through its engines) in a server slot; its function finds
    the service in the server's job environment."""
    env.cached(BATCH_SERVICE_KEY, lambda: service)
    runner.register(
        BATCH_JOB_KIND,
        "genfoundry.services.batches:run_batch",
        on_finish="genfoundry.services.batches:finish_batch",
        uses_device=False,
        in_server=True,
    )
