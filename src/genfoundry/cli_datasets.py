"""`genfoundry datasets ...`: create from a ZIP or a URL list, caption, list, show, export a kohya config.

On the server when one answers, else in this process on the home (`cli_target.choose_server`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from genfoundry.cli_output import ProgressLines, print_table
from genfoundry.cli_target import ApiKeyOption, LocalOption, ServerOption, choose_server
from genfoundry.config import Settings
from genfoundry.schemas.jobs import ACTIVE_STATUSES, JobStatus

if TYPE_CHECKING:
    from genfoundry.client_datasets import DatasetsClient

app = typer.Typer(help="Training datasets: images (ZIP, URLs) and JSONL text.", no_args_is_help=True)
SUMMARY_FIELDS = ("id", "name", "kind", "status", "trigger_word", "error", "stats")
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def _follow(local: Any, job_id: str, label: str) -> dict[str, Any]:
    """Show a job's progress until it ends; returns its final row as a dict."""
    from genfoundry.repo import jobs as jobs_repo

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    lines = ProgressLines(label) if not err_console.is_terminal else None  # where the bar cannot redraw
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(label, total=None)
        while True:
            with local.services.sessions() as session:
                job = jobs_repo.get_job(session=session, job_id=job_id)
                assert job is not None
                state = {"status": job.status, "error": job.error, "result": job.result}
                progress.update(task, completed=job.progress_step, total=job.progress_total or None)
                if lines is not None and job.progress_step:
                    lines.report(job.progress_step, job.progress_total or None)
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


def _remote_summary(dataset: dict[str, Any]) -> dict[str, Any]:
    """The fields `_summary` prints, from the server's dataset object."""
    return {name: dataset.get(name) for name in SUMMARY_FIELDS}


@contextmanager
def _server(url: str, api_key: str | None) -> Iterator[DatasetsClient]:
    """A client for the server; an error it reports ends the command with its message and exit code 1."""
    from genfoundry.client_datasets import DatasetsClient
    from genfoundry.errors import GenfoundryError

    client = DatasetsClient(url, api_key)
    try:
        with client:
            yield client
    except GenfoundryError as exc:
        raise _fail(exc.message) from None


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Dataset name")],
    zip_file: Annotated[Path | None, typer.Option("--zip", exists=True, dir_okay=False, help="ZIP of images")] = None,
    urls: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="File with one image URL a line")
    ] = None,
    jsonl: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="JSONL text dataset")] = None,
    trigger_word: Annotated[str | None, typer.Option()] = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Create a dataset from exactly one of --zip, --urls or --jsonl; prints the dataset as JSON."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.services.local import open_local

    sources = [s for s in (zip_file, urls, jsonl) if s is not None]
    if len(sources) != 1:
        raise _fail("give exactly one of --zip, --urls or --jsonl")
    url_list = None
    if urls is not None:
        url_list = [line.strip() for line in urls.read_text(encoding="utf-8").splitlines() if line.strip()]
    target = choose_server(server, in_process)
    if target is not None:
        summary, report = _create_remote(target, api_key, name, zip_file, url_list, jsonl, trigger_word)
        _print_created(summary, report)
        return
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
            elif url_list is not None:
                dataset, job = service.create_from_urls(
                    owner_id=owner, name=name, urls=url_list, trigger_word=trigger_word
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
    _print_created(summary, report)


def _create_remote(
    url: str,
    api_key: str | None,
    name: str,
    zip_file: Path | None,
    url_list: list[str] | None,
    jsonl: Path | None,
    trigger_word: str | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """`create` on the server: the dataset's summary and, for a ZIP, the report on each file."""
    with _server(url, api_key) as client:
        if zip_file is not None:
            with err_console.status("uploading, checking and storing images…"):
                dataset = client.create_from_zip(name=name, zip_path=zip_file, trigger_word=trigger_word)
            return _remote_summary(dataset), dataset.get("report")
        if url_list is not None:
            dataset = client.create_from_urls(name=name, urls=url_list, trigger_word=trigger_word)
            with err_console.status("downloading…"):
                client.wait(dataset["job_id"])
            return _remote_summary(client.dataset(dataset["id"])), None
        assert jsonl is not None
        return _remote_summary(client.create_from_jsonl(name=name, path=jsonl)), None


def _print_created(summary: dict[str, Any], report: dict[str, Any] | None) -> None:
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
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Caption every image without a caption, with a progress bar."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.services.local import open_local

    target = choose_server(server, in_process)
    if target is not None:
        body = {"model": model, "prompt": prompt, "trigger_word": trigger_word, "overwrite": overwrite}
        with _server(target, api_key) as client:
            started = client.caption(dataset_id, {key: value for key, value in body.items() if value is not None})
            with err_console.status("captioning…"):
                ended = client.wait(started["id"])
            summary = _remote_summary(client.dataset(dataset_id))
        if ended["status"] != JobStatus.SUCCEEDED:
            raise _fail(f"captioning {ended['status']}: {ended.get('error')}")
        print(json.dumps(summary, indent=2))
        return
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
def list_datasets(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per dataset, as the API gives them")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Your datasets, newest first."""
    from genfoundry.presenters.datasets import dataset_public
    from genfoundry.services.local import open_local

    target = choose_server(server, in_process)
    if target is not None:
        with _server(target, api_key) as client:
            items = list(client.datasets())
    else:
        with open_local(Settings()) as local:
            service = local.services.datasets
            page = service.list_datasets(owner_id=local.owner_id(api_key), limit=1000, after=None, with_stats=True)
        items = [dataset_public(row, page.stats[row.id]).model_dump(mode="json") for row in page.datasets]
    if as_json:
        for item in items:
            print(json.dumps(item))
        return
    table = Table("id", "name", "kind", "status", "accepted", "rejected", "trigger word")
    for item in items:
        stats = item["stats"]
        accepted, rejected = stats.get("accepted", stats.get("examples", 0)), stats.get("rejected", 0)
        kind, status, trigger = item["kind"], item["status"], item["trigger_word"] or ""
        table.add_row(item["id"], item["name"], kind, status, str(accepted), str(rejected), trigger)
    print_table(table, console=console)


@app.command("show")
def show(
    dataset_id: Annotated[str, typer.Argument()],
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """A dataset's status and stats as JSON."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.repo import datasets as datasets_repo
    from genfoundry.services.local import open_local

    target = choose_server(server, in_process)
    if target is not None:
        with _server(target, api_key) as client:
            print(json.dumps(_remote_summary(client.dataset(dataset_id)), indent=2))
        return
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
    resolution: Annotated[int | None, typer.Option(help="Default: from the images (see the file's comment)")] = None,
    batch_size: Annotated[int, typer.Option()] = 1,
    num_repeats: Annotated[int, typer.Option()] = 10,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Print the kohya sd-scripts dataset TOML for the dataset's folder."""
    from genfoundry.datasets.kohya import KohyaOptions
    from genfoundry.errors import GenfoundryError
    from genfoundry.repo import datasets as datasets_repo
    from genfoundry.services.local import open_local

    if format != "kohya":
        raise _fail("the only config format is kohya")
    target = choose_server(server, in_process)
    if target is not None:
        with _server(target, api_key) as client:
            trigger = client.dataset(dataset_id)["trigger_word"]
            params = {"resolution": resolution, "batch_size": batch_size, "num_repeats": num_repeats}
            params["class_tokens"] = trigger
            print(client.kohya_config(dataset_id, {k: v for k, v in params.items() if v is not None}), end="")
        return
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
