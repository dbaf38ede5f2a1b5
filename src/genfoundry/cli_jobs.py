"""`genfoundry train` and `genfoundry jobs ...`: fine-tuning and job control against a running server (HTTP).

Everything here goes through the server, so stopping the CLI (Ctrl-C) never touches a job.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from genfoundry.cli_output import ProgressLines, fail, print_table
from genfoundry.cli_target import ApiKeyOption, ServerOption, default_server
from genfoundry.schemas.jobs import JobStatus

if TYPE_CHECKING:
    from genfoundry.client_jobs import JobsClient

app = typer.Typer(help="Jobs on a running server: training, dataset downloads, captioning.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C
LOG_TYPES = ("log", "status")  # what the server's /log endpoint shows


class Method(StrEnum):
    lora = "lora"
    dreambooth = "dreambooth"


@contextmanager
def _connect(server: str | None, api_key: str | None) -> Iterator[JobsClient]:
    """A client for the server; any error it reports ends the command with its message and exit code 1."""
    from genfoundry.client_jobs import JobsClient
    from genfoundry.errors import GenfoundryError

    try:
        with JobsClient(server or default_server(), api_key) as client:
            yield client
    except GenfoundryError as exc:
        raise fail(exc.message) from None


def _when(seconds: int | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.localtime(seconds)) if seconds else ""


def _progress_text(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    step, total = progress.get("step") or 0, progress.get("total") or 0
    return f"{step}/{total}" if total else (str(step) if step else "")


def event_line(event: dict[str, Any]) -> str | None:
    """The log line for an event, formatted as the server's /log endpoint does; None for metrics (the bar's)."""
    kind = event.get("type")
    data: dict[str, Any] = event.get("data") or {}
    text = str(event.get("message") or "")
    if kind == "metrics":
        return None
    if kind == "status" and data.get("error"):
        text = f"{text}: {data['error']}"
    elif kind == "status" and data.get("reason"):
        text = f"{text} ({data['reason']})"
    elif kind == "checkpoint":
        text = f"checkpoint at step {data.get('step')}: {data.get('path') or text}"
    elif kind == "sample":
        prompt = f" ({data['prompt']})" if data.get("prompt") else ""
        text = f"sample at step {data.get('step')}{prompt}: {data.get('url') or text}"
    return f"{_when(event.get('created_at'))} {text}"


class JobProgress:
    """A job's log lines (stdout) above a live bar (stderr: step/total, loss, it/s, ETA) moved by metrics events."""

    def __init__(self, client: JobsClient, job_id: str, *, total: int | None = None) -> None:
        self.client = client
        self.job_id = job_id
        self.total = total
        self._looked_up_total = False
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            console=err_console,
            redirect_stdout=sys.stdout.isatty(),
        )
        self.task: TaskID | None = None
        # Where the bar cannot redraw (stderr into a file or a pipe), plain lines say how far training got.
        self.lines = ProgressLines("training") if not err_console.is_terminal else None

    def __enter__(self) -> JobProgress:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def show(self, event: dict[str, Any]) -> None:
        if event.get("type") == "metrics":
            self._step(event.get("data") or {})
            return
        line = event_line(event)
        if line is not None:
            # To stdout, with the bar on stderr; on a terminal the live display prints it above the bar.
            print(line, flush=True)

    def _step(self, data: dict[str, Any]) -> None:
        step = int(data.get("step") or 0)
        total = data.get("total") or self.total
        if not total and not self._looked_up_total:
            # Older events carry no total; the job row knows it once the job runs.
            self._looked_up_total = True
            total = (self.client.job(self.job_id).get("progress") or {}).get("total") or None
        self.total = int(total) if total else None
        stats = []
        if isinstance(data.get("loss"), int | float):
            stats.append(f"loss {data['loss']:.4f}")
        rate = data.get("it_per_s")
        if isinstance(rate, int | float) and rate > 0:
            stats.append(f"{rate:.2f} it/s")
            if self.total:
                stats.append(f"ETA {timedelta(seconds=round(max(self.total - step, 0) / rate))}")
        if self.lines is not None:
            self.lines.report(step, self.total, "  ".join(stats))
        if self.task is None:
            self.task = self.progress.add_task("training", total=self.total, completed=step, stats="  ".join(stats))
        else:
            self.progress.update(self.task, total=self.total, completed=step, stats="  ".join(stats))


def follow_job(client: JobsClient, job_id: str, *, after: str | None = None, total: int | None = None) -> None:
    """Show a job's events as they happen until it has ended (the server's SSE stream says [DONE])."""
    with JobProgress(client, job_id, total=total) as view:
        for event in client.stream_events(job_id, after=after):
            view.show(event)


def train(
    dataset: Annotated[str, typer.Option(help="Image dataset id (training_file)")],
    model: Annotated[str, typer.Option(help="Base model id, e.g. tiny-sd15")],
    trigger_word: Annotated[
        str | None, typer.Option(help="Token that calls up the concept (default: dataset's)")
    ] = None,
    method: Annotated[Method, typer.Option(help="Training method")] = Method.lora,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (max_steps)")] = None,
    rank: Annotated[int | None, typer.Option(help="LoRA rank")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Learning rate")] = None,
    resolution: Annotated[int | None, typer.Option(help="Training resolution in pixels (multiple of 8)")] = None,
    suffix: Annotated[str | None, typer.Option(help="Added to the adapter's name")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for a reproducible run")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Show live progress until the job ends")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Start a fine-tuning job on a running server and print its id; --follow shows its progress live.

    Ctrl-C while following stops following only: the job keeps running on the server.
    """
    hyperparameters = {
        "max_steps": steps,
        "trigger_word": trigger_word,
        "rank": rank,
        "learning_rate": learning_rate,
        "resolution": resolution,
    }
    body: dict[str, Any] = {
        "model": model,
        "training_file": dataset,
        "method": {
            "type": method.value,
            method.value: {"hyperparameters": {k: v for k, v in hyperparameters.items() if v is not None}},
        },
    }
    if suffix is not None:
        body["suffix"] = suffix
    if seed is not None:
        body["seed"] = seed
    with _connect(server, api_key) as client:
        job_id = client.create_fine_tuning_job(body)["id"]
        print(job_id, flush=True)
        if not follow:
            return
        try:
            follow_job(client, job_id, total=steps)
        except KeyboardInterrupt:
            err_console.print(f"still running: genfoundry jobs logs -f {job_id}", markup=False, soft_wrap=True)
            raise typer.Exit(code=INTERRUPTED) from None
        final = client.fine_tuning_job(job_id)
    status = final["status"]
    if status == JobStatus.FAILED:
        raise fail(f"job {job_id} failed: {(final.get('error') or {}).get('message', 'no reason given')}")
    if status == JobStatus.CANCELLED:
        raise fail(f"job {job_id} was cancelled")
    print(f"status: {status}")
    print(f"fine_tuned_model: {final.get('fine_tuned_model')}")


@app.command("list")
def list_jobs(
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. fine_tune_lora, dataset_caption")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 20,
    after: Annotated[str | None, typer.Option(help="Start after this job id (the next page)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's JSON")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Your jobs of every kind, newest first."""
    from rich.table import Table

    with _connect(server, api_key) as client:
        page = client.list_jobs(limit=limit, after=after, kind=kind)
    if as_json:
        print(json.dumps(page, indent=2))
        return
    # Borderless, so 80 columns hold a whole id (never cut: it is what the other commands take).
    table = Table(box=None, pad_edge=False)
    table.add_column("id")
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("progress")
    table.add_column("created")
    for job in page["data"]:
        table.add_row(job["id"], job["kind"], job["status"], _progress_text(job), _when(job["created"], "%m-%d %H:%M"))
    print_table(table, console=console)
    if page.get("has_more") and page["data"]:
        err_console.print(f"more: genfoundry jobs list --after {page['data'][-1]['id']}", markup=False, soft_wrap=True)


@app.command("show")
def show_job(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's JSON")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A job's status, progress, result and error."""
    with _connect(server, api_key) as client:
        job = client.job(job_id)
    if as_json:
        print(json.dumps(job, indent=2))
        return
    rows = {
        "id": job["id"],
        "kind": job["kind"],
        "status": job["status"],
        "progress": _progress_text(job),
        "created": _when(job.get("created")),
        "started": _when(job.get("started")),
        "finished": _when(job.get("finished")),
        "result": json.dumps(job["result"]) if job.get("result") else "",
        "error": job.get("error") or "",
    }
    for name, value in rows.items():
        if value:
            print(f"{name:>8}  {value}")


def _print_tail(client: JobsClient, job_id: str, tail: int) -> str | None:
    """Print the last `tail` log lines from the event list; returns the id of the newest event of any type."""
    lines: deque[str] = deque(maxlen=tail)
    after: str | None = None
    while True:
        page = client.events(job_id, after=after)
        for event in page["data"]:
            after = event["id"]
            line = event_line(event) if event.get("type") in LOG_TYPES else None
            if line is not None:
                lines.append(line)
        if not page.get("has_more") or not page["data"]:
            break
    for line in lines:
        print(line)
    return after


@app.command("logs")
def job_logs(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    tail: Annotated[int, typer.Option(min=1, max=10000, help="How many of the last lines")] = 10,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """A job's last log lines; -f follows it live (with a progress bar for training) until it ends."""
    with _connect(server, api_key) as client:
        if not follow:
            print(client.log(job_id, tail=tail), end="")
            return
        try:
            last_seen = _print_tail(client, job_id, tail)
            follow_job(client, job_id, after=last_seen)
        except KeyboardInterrupt:
            raise typer.Exit(code=INTERRUPTED) from None


@app.command("cancel")
def cancel_job(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Ask a queued or running job to stop (at its next step); a finished job cannot be cancelled."""
    with _connect(server, api_key) as client:
        job = client.cancel(job_id)
    print(f"cancel requested: {job['id']} (was {job['status']})")


@app.command("resume")
def resume_job(
    job_id: Annotated[str, typer.Argument(help="Job id")],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Queue a cancelled or failed job again; it continues from its last checkpoint."""
    with _connect(server, api_key) as client:
        job = client.resume(job_id)
    print(f"resumed: {job['id']} ({job['status']})")
    err_console.print(f"follow it: genfoundry jobs logs -f {job['id']}", markup=False, soft_wrap=True)
