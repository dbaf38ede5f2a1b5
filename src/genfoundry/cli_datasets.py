"""`genfoundry datasets ...`: create from a ZIP or a URL list, caption, list, show, export a kohya config."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from genfoundry.config import Settings
from genfoundry.schemas.jobs import ACTIVE_STATUSES, JobStatus

app = typer.Typer(help="Training datasets: images (ZIP, URLs) and JSONL text.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _follow(local: Any, job_id: str, label: str) -> dict[str, Any]:
    """Show a job's progress until it ends; returns its final row as a dict."""
    from genfoundry.repo import jobs as jobs_repo

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=None)
        while True:
            with local.services.sessions() as session:
                job = jobs_repo.get_job(session=session, job_id=job_id)
                assert job is not None
                state = {"status": job.status, "error": job.error, "result": job.result}
                progress.update(task, completed=job.progress_step, total=job.progress_total or None)
            if state["status"] not in ACTIVE_STATUSES:
                return state
            time.sleep(0.2)


def _summary(local: Any, dataset_id: str) -> dict[str, Any]:
    from genfoundry.repo import datasets as datasets_repo

    with local.services.sessions() as session:
        dataset = datasets_repo.get_dataset(session=session, dataset_id=dataset_id)
        assert dataset is not None
        return {
            "id": dataset.id,
            "name": dataset.name,
            "kind": dataset.kind,
            "status": dataset.status,
            "trigger_word": dataset.trigger_word,
            "error": dataset.error,
            "stats": local.services.datasets.stats(session, dataset),
        }


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Dataset name")],
    zip_file: Annotated[Path | None, typer.Option("--zip", exists=True, dir_okay=False, help="ZIP of images")] = None,
    urls: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="File with one image URL a line")
    ] = None,
    jsonl: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="JSONL text dataset")] = None,
    trigger_word: Annotated[str | None, typer.Option()] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="GENFOUNDRY_API_KEY", help="Owner (default: local user)")
    ] = None,
) -> None:
    """Create a dataset from exactly one of --zip, --urls or --jsonl; prints the dataset as JSON."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.services.local import open_local

    sources = [s for s in (zip_file, urls, jsonl) if s is not None]
    if len(sources) != 1:
        raise _fail("give exactly one of --zip, --urls or --jsonl")
    try:
        with open_local(Settings()) as local:
            owner = local.owner_id(api_key)
            service = local.services.datasets
            report = None
            if zip_file is not None:
                with err_console.status("checking and storing images…"):
                    dataset, report = service.create_from_zip(
                        owner_id=owner, name=name, zip_path=zip_file, trigger_word=trigger_word, filename=zip_file.name
                    )
            elif urls is not None:
                lines = [line.strip() for line in urls.read_text(encoding="utf-8").splitlines()]
                dataset, job = service.create_from_urls(
                    owner_id=owner, name=name, urls=[line for line in lines if line], trigger_word=trigger_word
                )
                _follow(local, job.id, "downloading")
            else:
                assert jsonl is not None
                dataset = service.create_from_jsonl(owner_id=owner, name=name, path=jsonl, filename=jsonl.name)
            summary = _summary(local, dataset.id)
    except GenfoundryError as exc:
        if exc.details is not None:
            err_console.print_json(json.dumps(exc.details))
        raise _fail(exc.message) from None
    if report is not None:
        for item in report["items"]:
            if item["status"] != "ok":
                err_console.print(f"{item['status']:>9}  {item['source']}: {item['reason']}")
    print(json.dumps(summary, indent=2))


@app.command("caption")
def caption(
    dataset_id: Annotated[str, typer.Argument()],
    model: Annotated[str | None, typer.Option(help="Captioner id (default from settings)")] = None,
    prompt: Annotated[str | None, typer.Option(help="Florence-2 task, e.g. <DETAILED_CAPTION>")] = None,
    trigger_word: Annotated[str | None, typer.Option()] = None,
    overwrite: Annotated[bool, typer.Option(help="Re-caption images that have a caption")] = False,
    api_key: Annotated[str | None, typer.Option(envvar="GENFOUNDRY_API_KEY")] = None,
) -> None:
    """Caption every image without a caption, with a progress bar."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.services.local import open_local

    try:
        with open_local(Settings()) as local:
            job = local.services.datasets.start_captioning(
                owner_id=local.owner_id(api_key),
                dataset_id=dataset_id,
                model=model,
                prompt=prompt,
                trigger_word=trigger_word,
                overwrite=overwrite,
                batch_size=None,
            )
            state = _follow(local, job.id, "captioning")
            summary = _summary(local, dataset_id)
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    if state["status"] != JobStatus.SUCCEEDED:
        raise _fail(f"captioning {state['status']}: {state['error']}")
    print(json.dumps(summary, indent=2))


@app.command("list")
def list_datasets(api_key: Annotated[str | None, typer.Option(envvar="GENFOUNDRY_API_KEY")] = None) -> None:
    """Your datasets, newest first."""
    from genfoundry.repo import datasets as datasets_repo
    from genfoundry.services.local import open_local

    with open_local(Settings()) as local, local.services.sessions() as session:
        rows, _ = datasets_repo.list_datasets(session=session, owner_id=local.owner_id(api_key), limit=1000)
    table = Table("id", "name", "kind", "status", "accepted", "rejected", "trigger word")
    for row in rows:
        table.add_row(
            row.id, row.name, row.kind, row.status, str(row.accepted), str(row.rejected), row.trigger_word or ""
        )
    console.print(table)


@app.command("show")
def show(
    dataset_id: Annotated[str, typer.Argument()],
    api_key: Annotated[str | None, typer.Option(envvar="GENFOUNDRY_API_KEY")] = None,
) -> None:
    """A dataset's status and stats as JSON."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.repo import datasets as datasets_repo
    from genfoundry.services.local import open_local

    try:
        with open_local(Settings()) as local:
            with local.services.sessions() as session:
                datasets_repo.require_dataset(session=session, owner_id=local.owner_id(api_key), dataset_id=dataset_id)
            summary = _summary(local, dataset_id)
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    print(json.dumps(summary, indent=2))


@app.command("config")
def config(
    dataset_id: Annotated[str, typer.Argument()],
    format: Annotated[str, typer.Option(help="Only kohya for now")] = "kohya",
    resolution: Annotated[int, typer.Option()] = 1024,
    batch_size: Annotated[int, typer.Option()] = 1,
    num_repeats: Annotated[int, typer.Option()] = 10,
    api_key: Annotated[str | None, typer.Option(envvar="GENFOUNDRY_API_KEY")] = None,
) -> None:
    """Print the kohya sd-scripts dataset TOML for the dataset's folder."""
    from genfoundry.datasets.kohya import KohyaOptions
    from genfoundry.errors import GenfoundryError
    from genfoundry.repo import datasets as datasets_repo
    from genfoundry.services.local import open_local

    if format != "kohya":
        raise _fail("the only config format is kohya")
    try:
        with open_local(Settings()) as local:
            with local.services.sessions() as session:
                dataset = datasets_repo.require_dataset(
                    session=session, owner_id=local.owner_id(api_key), dataset_id=dataset_id
                )
            options = KohyaOptions(
                resolution=resolution, batch_size=batch_size, num_repeats=num_repeats, class_tokens=dataset.trigger_word
            )
            text = local.services.datasets.kohya_config(dataset, options)
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    print(text, end="")
