"""`genfoundry demo images`: teach mini-sd15 a new word with a LoRA on this machine and show it, before and after.

In-process (no server), through the services the API uses: a ZIP dataset (eight yellow stars on purple captioned
"a zzq", drawn by genfoundry.models.mini_scenes), a LoRA job in its own process with a progress bar, then the same
prompts and seeds from the base and from the adapter, written side by side into one PNG whose path is printed."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from genfoundry.cli_demo import err_console, fail, follow_job, write_demo_file
from genfoundry.config import Settings
from genfoundry.models.mini_scenes import TAUGHT_WORD, taught_word_zip
from genfoundry.schemas.jobs import JobStatus

DEMO_IMAGE_BASE = "mini-sd15"
DEMO_WORD = TAUGHT_WORD
DEMO_IMAGE_HYPERPARAMETERS: dict[str, Any] = {
    "rank": 8,
    "resolution": 64,
    "max_steps": 150,
    "batch_size": 4,
    "learning_rate": 2e-3,
}
# The taught word alone, the word placed by the vocabulary, and a vocabulary prompt the adapter should leave alone.
GRID_PROMPTS = (f"a {DEMO_WORD}", f"a {DEMO_WORD} in the top left", "a red circle on a blue background")
GRID_SEEDS = (0, 1, 2)
CELL = 128  # each 64 px image drawn at 2x, pixels kept sharp


def _train(local: Any, owner: str, steps: int) -> str:
    from genfoundry.schemas import FineTuningJobCreate

    services = local.services
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{DEMO_WORD}.zip"
        archive.write_bytes(taught_word_zip())
        dataset, _report = services.datasets.create_from_zip(
            owner_id=owner, name=f"demo-{DEMO_WORD}", zip_path=archive, trigger_word=None, filename=archive.name
        )
    body = FineTuningJobCreate.model_validate(
        {
            "model": DEMO_IMAGE_BASE,
            "training_file": dataset.id,
            "suffix": f"demo-{DEMO_WORD}",
            "seed": 1,
            "method": {"type": "lora", "lora": {"hyperparameters": {**DEMO_IMAGE_HYPERPARAMETERS, "max_steps": steps}}},
        }
    )
    job = services.fine_tuning.create(owner_id=owner, body=body)
    err_console.print(f"teaching {DEMO_IMAGE_BASE} 'a {DEMO_WORD}' from {dataset.accepted} images (job {job.id})")
    status, error, result = follow_job(services, owner, job.id, "LoRA")
    if status != JobStatus.SUCCEEDED:
        raise fail(f"the fine-tuning job {status}: {error}")
    return str(result["fine_tuned_model"])


def _draw(local: Any, owner: str, model: str) -> list[Any]:
    from PIL import Image

    from genfoundry.schemas.images import ImageOptions

    images = local.services.images
    drawn = []
    for prompt in GRID_PROMPTS:
        for seed in GRID_SEEDS:
            options = ImageOptions.model_validate({"model": model, "prompt": prompt, "size": "64x64", "seed": seed})
            planned = images.plan(owner_id=owner, options=options)
            [recorded] = images.record(planned, images.run_sync(planned))
            drawn.append(Image.open(io.BytesIO(recorded.content)).convert("RGB"))
    return drawn


def before_after_grid(before: list[Any], after: list[Any]) -> Any:
    """One row per prompt: its seeds from the base, a gap, the same seeds from the adapter; headings on top."""
    from PIL import Image, ImageDraw

    columns, label_height, gap = len(GRID_SEEDS), 18, 16
    row_label = 16
    width = 2 * columns * CELL + gap
    height = label_height + len(GRID_PROMPTS) * (CELL + row_label)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    draw.text((4, 3), f"{DEMO_IMAGE_BASE} (before)", fill=(0, 0, 0))
    draw.text((columns * CELL + gap + 4, 3), f"+ LoRA taught 'a {DEMO_WORD}' (after)", fill=(0, 0, 0))
    for row, prompt in enumerate(GRID_PROMPTS):
        top = label_height + row * (CELL + row_label)
        draw.text((4, top + 2), f'"{prompt}"  seeds {", ".join(map(str, GRID_SEEDS))}', fill=(60, 60, 60))
        for column in range(columns):
            index = row * columns + column
            for side, images in enumerate((before, after)):
                left = side * (columns * CELL + gap) + column * CELL
                cell = images[index].resize((CELL, CELL), Image.Resampling.NEAREST)
                grid.paste(cell, (left, top + row_label))
    return grid


def images(
    steps: Annotated[int, typer.Option(min=1, help="LoRA training steps")] = DEMO_IMAGE_HYPERPARAMETERS["max_steps"],
    out: Annotated[Path | None, typer.Option(help="Where to write the grid (default: <home>/demo/)")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="GENFOUNDRY_API_KEY", help="Owner (default: local user)")
    ] = None,
) -> None:
    """Teach mini-sd15 a new word ('a zzq': yellow stars on purple) with a LoRA (a few minutes on a CPU) and write
    a before/after grid: the same prompts and seeds from the base and from the adapter."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.models.tiny_registry import build_and_register_tiny
    from genfoundry.services.local import open_local

    settings = Settings()
    with err_console.status("checking the tiny and mini models…"):
        installed = dict(build_and_register_tiny(settings.tiny_models_dir))
    if DEMO_IMAGE_BASE not in installed:
        raise fail(f"{DEMO_IMAGE_BASE} is not in this installation (scripts/train_mini_models.py sd15 builds it)")
    try:
        with open_local(settings) as local:
            owner = local.owner_id(api_key)
            adapter_id = _train(local, owner, steps)
            with err_console.status("drawing before and after…"):
                grid = before_after_grid(_draw(local, owner, DEMO_IMAGE_BASE), _draw(local, owner, adapter_id))
    except GenfoundryError as exc:
        raise fail(exc.message) from None
    png = io.BytesIO()
    grid.save(png, format="PNG")
    target = write_demo_file(out or settings.home / "demo" / f"{adapter_id}-{int(time.time())}.png", png.getvalue())
    err_console.print(
        f"before/after grid written to [bold]{escape(str(target))}[/bold]; generate with the adapter: "
        f'model="{adapter_id}"'
    )
    print(target)
