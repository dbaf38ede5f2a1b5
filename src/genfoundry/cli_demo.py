"""`genfoundry demo diagrams`: fine-tune mini-llm on the shipped scenario -> PlantUML pairs on this machine, then
turn a scenario it has not seen into a rendered diagram. In-process (no server), through the same services the
API uses: a JSONL dataset, an SFT job in its own process, a text adapter, chat completions, PlantUML's check."""

from __future__ import annotations

import shutil
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from genfoundry.config import Settings
from genfoundry.schemas.jobs import ACTIVE_STATUSES, JobStatus

app = typer.Typer(help="Offline demos on tiny models.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

DEMO_BASE = "mini-llm"
DEMO_SUFFIX = "demo-diagrams"
DEMO_ADAPTER_NAME = f"ft-{DEMO_BASE}-{DEMO_SUFFIX}"  # what SftService names the result
# mini-llm is pretrained on PlantUML (docs/mini-models.md), so a few epochs over the pairs teach it the task's
# exact style; bench/bench_sft.py measures the result.
DEMO_HYPERPARAMETERS: dict[str, Any] = {
    "n_epochs": 3,
    "batch_size": 2,
    "packing": True,
    "max_seq_length": 512,
    "rank": 16,
    "learning_rate": 2e-3,
    "validation_fraction": 0.05,
    "eval_every_n_steps": 50,
    "checkpoint_every_n_steps": 100,
}
MAX_REPLY_TOKENS = 320


def fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code=1)


def _packaged_lines(name: str) -> list[str]:
    text = files("genfoundry.data").joinpath("diagrams", name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def heldout_scenarios(start: int = 0) -> list[str]:
    """Every held-out scenario (none of them is in the training pairs), beginning with the `start`-th."""
    import json

    prompts = [str(json.loads(line)["prompt"]) for line in _packaged_lines("plantuml_pairs_heldout.jsonl")]
    start %= len(prompts)
    return prompts[start:] + prompts[:start]


def _demo_adapter(local: Any, owner: str) -> str | None:
    """The newest adapter an earlier run of the demo trained for `owner`."""
    from genfoundry.repo import adapters as adapters_repo

    with local.services.sessions() as session:
        mine = adapters_repo.list_adapters(session=session, owner_id=owner)
    found = [a for a in mine if a.name == DEMO_ADAPTER_NAME and a.base_id == DEMO_BASE and a.family == "text"]
    return found[-1].id if found else None


def _train(local: Any, owner: str, steps: int | None) -> str:
    """Upload the pairs, run the SFT job with a progress bar; returns the adapter id."""
    from genfoundry.schemas import FineTuningJobCreate

    services = local.services
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "plantuml_pairs.jsonl"
        source = files("genfoundry.data").joinpath("diagrams", "plantuml_pairs.jsonl")
        with source.open("rb") as src, copy.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        dataset = services.datasets.create_from_jsonl(
            owner_id=owner, name="plantuml-pairs", path=copy, filename=copy.name
        )
    hyper = dict(DEMO_HYPERPARAMETERS)
    if steps is not None:
        hyper.pop("n_epochs")
        hyper["max_steps"] = steps
    body = FineTuningJobCreate.model_validate(
        {
            "model": DEMO_BASE,
            "training_file": dataset.id,
            "suffix": DEMO_SUFFIX,
            "seed": 0,
            "method": {"type": "sft", "sft": {"hyperparameters": hyper}},
        }
    )
    job = services.fine_tuning.create(owner_id=owner, body=body)
    err_console.print(f"fine-tuning {DEMO_BASE} on {dataset.accepted} scenario -> PlantUML pairs (job {job.id})")
    status, error, result = follow_job(services, owner, job.id, "SFT", epochs=hyper.get("n_epochs"))
    if status != JobStatus.SUCCEEDED:
        raise fail(f"the fine-tuning job {status}: {error}")
    adapter_id = str(result["fine_tuned_model"])
    accuracy = result.get("token_accuracy")
    note = f", validation token accuracy {accuracy:.0%}" if isinstance(accuracy, int | float) else ""
    err_console.print(f"adapter [bold]{adapter_id}[/bold]{note}")
    return adapter_id


def follow_job(
    services: Any, owner: str, job_id: str, label: str, *, epochs: int | None = None
) -> tuple[str, str | None, dict[str, Any]]:
    """A progress bar (steps, loss, ETA) until the job ends; Ctrl-C cancels it. Returns (status, error, result).

    When stdout is not a terminal (a log, CI), the bar does not redraw: a line per epoch of `epochs` says how far
    the job got instead."""
    columns = (
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=err_console) as progress:
            task = progress.add_task(label, total=None, metrics="starting…")
            epoch_lines = _EpochLines(label, epochs) if epochs and not console.is_terminal else None
            while True:
                row = services.fine_tuning.get(owner_id=owner, job_id=job_id)
                last = services.fine_tuning.latest_event(job_id=job_id, type="metrics")
                status, error, result = row.status, row.error, dict(row.result)
                step, total = row.progress_step, row.progress_total
                shown = _metrics_text(last.data if last is not None else {})
                progress.update(task, completed=step, total=total or None, metrics=shown)
                if epoch_lines is not None:
                    epoch_lines.update(step, total, shown)
                if status not in ACTIVE_STATUSES:
                    return str(status), error, result
                time.sleep(0.3)
    except KeyboardInterrupt:
        services.jobs.cancel(job_id)
        raise fail(f"interrupted; job {job_id} cancelled (resume it with `genfoundry jobs resume {job_id}`)") from None


class _EpochLines:
    """Prints `SFT epoch 2/3: step 120/180, loss 0.512` once per finished epoch."""

    def __init__(self, label: str, epochs: int) -> None:
        self.label, self.epochs, self.printed = label, epochs, 0

    def update(self, step: int, total: int | None, metrics: str) -> None:
        if not total:
            return
        done = min(self.epochs, step * self.epochs // total)
        if done > self.printed:
            self.printed = done
            err_console.print(f"{self.label} epoch {done}/{self.epochs}: step {step}/{total}, {metrics}")


def _metrics_text(data: dict[str, Any]) -> str:
    parts = []
    if "loss" in data:
        parts.append(f"loss {data['loss']:.3f}")
    if "eval_loss" in data:
        parts.append(f"eval {data['eval_loss']:.3f}")
    if "tokens_per_s" in data:
        parts.append(f"{data['tokens_per_s']:.0f} tok/s")
    return ", ".join(parts) or "loading…"


@app.command("diagrams")
def diagrams(
    scenario: Annotated[
        str | None, typer.Option(help="A scenario in words (default: one of the held-out scenarios)")
    ] = None,
    pick: Annotated[int, typer.Option(min=0, help="The held-out scenario to start from without --scenario")] = 0,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: 3 epochs)")] = None,
    tries: Annotated[int, typer.Option(min=1, max=10, help="Generations before giving up")] = 8,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    fmt: Annotated[str, typer.Option("--format", help="png or svg")] = "png",
    out: Annotated[Path | None, typer.Option(help="Where to write the image (default: <home>/demo/)")] = None,
    retrain: Annotated[bool, typer.Option(help="Train again even if an earlier run left an adapter")] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="GENFOUNDRY_API_KEY", help="Owner (default: local user)")
    ] = None,
) -> None:
    """Fine-tune mini-llm on the shipped PlantUML pairs (a few minutes on a CPU), then turn a scenario it
    has not seen into PlantUML, check it with PlantUML (retrying with new seeds) and render it."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.models.tiny_registry import build_and_register_tiny
    from genfoundry.services.local import open_local

    if fmt not in ("png", "svg"):
        raise fail("--format must be png or svg")
    settings = Settings()
    with err_console.status("checking the tiny models…"):
        for model_id, built in build_and_register_tiny(settings.tiny_models_dir):
            if built:
                err_console.print(f"built {model_id}")
    # Your scenario, or held-out ones from --pick on: the first that yields valid PlantUML is drawn (mini-llm
    # manages that for 36 of the 40 held-out scenarios within 3 tries; bench/RESULTS.md), skipped ones are reported.
    prompts = [scenario] if scenario else heldout_scenarios(pick)
    try:
        with open_local(settings) as local:
            owner = local.owner_id(api_key)
            adapter_id = None if retrain else _demo_adapter(local, owner)
            if adapter_id is not None:
                err_console.print(f"using adapter {adapter_id} from an earlier run (--retrain trains again)")
            else:
                adapter_id = _train(local, owner, steps)
            image = None
            for prompt in prompts:
                console.print(f"[bold]scenario:[/bold] {escape(prompt)}")
                # The same generate -> check -> retry -> render as POST /v1/diagrams.
                with err_console.status("generating PlantUML and checking it with PlantUML…"):
                    generated = local.services.diagram_generator.generate(
                        owner_id=owner,
                        prompt=prompt,
                        model=adapter_id,
                        fmt=fmt,  # type: ignore[arg-type]
                        max_attempts=tries,
                        seed=seed,
                        max_tokens=MAX_REPLY_TOKENS,
                    )
                for number, attempt in enumerate(generated.attempts, 1):
                    verdict = "valid" if attempt.valid else f"invalid: {_first_error(attempt.errors)}"
                    err_console.print(
                        f"  try {number} (seed {attempt.seed}, temperature {attempt.temperature}): {verdict}"
                    )
                if generated.stored is not None:
                    console.print(escape(generated.final.plantuml), highlight=False)
                    image = generated.stored.diagram.data
                    break
                err_console.print(f"  no valid PlantUML in {tries} tries")
            if image is None:
                hint = "" if scenario else f" for any of the {len(prompts)} held-out scenarios"
                raise fail(f"no valid PlantUML{hint}; train longer (--steps) or allow more --tries")
    except GenfoundryError as exc:
        raise fail(exc.message) from None
    target = write_demo_file(out or settings.home / "demo" / f"{adapter_id}-{int(time.time())}.{fmt}", image)
    err_console.print(
        f"diagram written to [bold]{escape(str(target))}[/bold]; POST /v1/diagrams draws with this adapter when "
        f"GENFOUNDRY_ASSISTANT__DIAGRAM_MODEL={adapter_id}"
    )
    print(target)


def write_demo_file(target: Path, data: bytes) -> Path:
    """Write a demo's result (its folder made if missing) and return where it went."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _first_error(errors: Any) -> str:
    if not errors:
        return "unknown"
    first = errors[0]
    line = getattr(first, "line", None)
    message = getattr(first, "message", str(first))
    return f"line {line}: {message}" if line is not None else str(message)
