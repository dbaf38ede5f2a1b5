"""Typer CLI: serve, generate, models, keys. Heavy ML imports happen only inside commands that need them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from genfoundry.cli_classify import classify
from genfoundry.cli_datasets import app as datasets_app
from genfoundry.cli_demo import app as demo_app
from genfoundry.cli_demo_images import images as demo_images
from genfoundry.cli_jobs import app as jobs_app
from genfoundry.cli_jobs import train
from genfoundry.cli_output import print_table
from genfoundry.cli_target import ApiKeyOption, LocalOption, ServerOption, choose_server
from genfoundry.config import Settings
from genfoundry.hub import use_hub_defaults
from genfoundry.library_noise import VERBOSE_ENV, quiet_unless_verbose

if TYPE_CHECKING:
    from genfoundry.schemas import ModelPublic

app = typer.Typer(
    help="genfoundry: datasets to fine-tuned generative models, served behind one API.", no_args_is_help=True
)
models_app = typer.Typer(help="Base models and adapters.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys: an admin command, on the home (run it on the server's machine).", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
demo_app.command("images")(demo_images)
app.add_typer(demo_app, name="demo")
console = Console()
err_console = Console(stderr=True)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every library warning, log line and progress bar")
    ] = False,
) -> None:
    # Before any command: known-harmless library warnings and progress bars stay out of its output (and of the
    # server's log, for `serve`, and of its job processes' logs), unless -v. Cheap: it imports no library.
    use_hub_defaults()
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # job processes started by `serve -v` inherit it
    quiet_unless_verbose()


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings: 8000)")] = None,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Run the HTTP API server."""
    import uvicorn

    from genfoundry.app import UnsafeBindError, auth_mode, create_app, log_to_stderr
    from genfoundry.errors import Invalid, StorageUnavailable
    from genfoundry.inference.pipeline_speed import check_image_speed
    from genfoundry.repo import users as users_repo
    from genfoundry.services.local import open_database
    from genfoundry.storage import open_store

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise _fail(_settings_error(exc)) from None
    try:
        check_image_speed(settings.image_speed, settings.resolved_device)
    except Invalid as exc:
        raise _fail(exc.message) from None
    with open_database(settings) as session:
        has_keys = users_repo.count_keys(session=session) > 0
    try:
        auth_mode(has_keys=has_keys, host=settings.host)
    except UnsafeBindError as exc:
        raise _fail(str(exc)) from None
    store = open_store(settings)
    if not store.is_local:
        try:
            store.check_access()
        except StorageUnavailable as exc:
            raise _fail(exc.message) from None
    # Spooled uploads and other temporary files of this server process stay under the home too.
    tmp = settings.home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    log_to_stderr(log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)


def _settings_error(exc: ValidationError) -> str:
    """One line per invalid setting, named by its path (`image_speed.fuse_qkv`), without pydantic's links."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "invalid settings: " + "; ".join(lines)


def _parse_lora(value: str) -> dict[str, Any]:
    adapter_id, _, weight = value.partition(":")
    try:
        return {"id": adapter_id, "weight": float(weight) if weight else 1.0}
    except ValueError:
        raise _fail(f"--lora takes ID or ID:WEIGHT, got {value!r}") from None


def _output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i + 1}{output.suffix}") for i in range(count)]


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw")],
    model: Annotated[str, typer.Option("--model", "-m", help="Base model or adapter id")] = "mini-sd15",
    lora: Annotated[list[str] | None, typer.Option(help="Adapter id, optionally :WEIGHT; repeatable")] = None,
    style: Annotated[str | None, typer.Option()] = None,
    industry: Annotated[str | None, typer.Option()] = None,
    image: Annotated[Path | None, typer.Option(help="Start from this image (image-to-image)")] = None,
    strength: Annotated[float, typer.Option(help="How far to move from --image (0-1]")] = 0.6,
    size: Annotated[str | None, typer.Option(help="WxH, e.g. 512x512")] = None,
    steps: Annotated[int | None, typer.Option()] = None,
    guidance_scale: Annotated[float | None, typer.Option("--guidance")] = None,
    negative_prompt: Annotated[str | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    n: Annotated[int, typer.Option("-n", help="Number of images")] = 1,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PNG")] = Path("out.png"),
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Generate images on the server (its OpenAI-compatible API, the model it has loaded) or, with --local or no
    server answering, in this process; the images are written here."""
    from genfoundry.errors import GenfoundryError

    fields: dict[str, Any] = {
        "prompt": prompt,
        "model": model,
        "n": n,
        "size": size,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "negative_prompt": negative_prompt,
        "seed": seed,
        "style": style,
        "industry": industry,
        "loras": [_parse_lora(value) for value in lora or []],
    }
    fields = {key: value for key, value in fields.items() if value is not None}
    target = choose_server(server, in_process)
    try:
        if target is not None:
            from genfoundry.client import generate_remote

            images = generate_remote(target, api_key, fields, image=image, strength=strength)
        else:
            from genfoundry.services.local import generate_local

            images = generate_local(Settings(), api_key, fields, image=image, strength=strength)
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    for path, (data, seed_used, seconds) in zip(_output_paths(output, len(images)), images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        console.print(f"{path}  seed={seed_used}  {seconds:.2f}s")


app.command()(train)


@models_app.command("list")
def list_models(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per model, as /v1/models gives them")
    ] = False,
) -> None:
    """Show every model on this machine: image and text bases, trained models, adapters, classifiers (all users)."""
    from genfoundry.presenters.models import models_public
    from genfoundry.services.local import open_local

    with open_local(Settings()) as local:
        rows = models_public(local.list_models())
    if as_json:
        for row in rows:
            typer.echo(row.model_dump_json())
        return
    table = Table("id", "kind", "family", "base", "trigger word / labels", "tags", "owner", "available")
    for row in rows:
        tags = ",".join(f"{k}={v}" for k, v in row.tags.items())
        detail = ",".join(row.labels) if row.labels is not None else row.trigger_word or ""
        table.add_row(row.id, row.kind, row.family, row.base or "", detail, tags, row.owned_by, _availability(row))
    print_table(table, console=console)


def _availability(row: ModelPublic) -> str:
    """ "yes", or how to get a missing base's weights (and their size, where the catalog knows it)."""
    if row.available:
        return "yes"
    size = f" ({row.size_gb:g} GB)" if row.size_gb is not None else ""
    return f"no: {row.fetch_command}{size}" if row.fetch_command else f"no{size}"


@models_app.command("build-tiny")
def build_tiny(
    force: Annotated[bool, typer.Option(help="Rebuild even if already built")] = False,
) -> None:
    """Build tiny random-weight pipelines (tiny-sd15, tiny-sdxl, tiny-flux) offline and register them in the home
    (an admin command: run it on the server's machine)."""
    from genfoundry.models.tiny_registry import build_and_register_tiny

    settings = Settings()
    for model_id, built in build_and_register_tiny(settings.tiny_models_dir, force=force):
        console.print(f"{model_id}: {'built' if built else 'already built'} in {settings.tiny_models_dir}")


@models_app.command("import")
def import_model(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="LoRA .safetensors")],
    base: Annotated[str, typer.Option(help="Base model id")],
    name: Annotated[str, typer.Option()],
    trigger_word: Annotated[str | None, typer.Option()] = None,
    tags: Annotated[str | None, typer.Option(help="key=value,key=value")] = None,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Register a LoRA file (diffusers/PEFT or kohya format) as an adapter of BASE."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.services.adapters import parse_tags
    from genfoundry.services.local import open_local

    target = choose_server(server, in_process)
    if target is not None:
        from genfoundry.client import import_adapter_remote

        form = {"base": base, "name": name, "trigger_word": trigger_word, "tags": tags}
        try:
            model = import_adapter_remote(target, api_key, file, {k: v for k, v in form.items() if v is not None})
        except GenfoundryError as exc:
            raise _fail(exc.message) from None
        console.print(json.dumps({"id": model["id"], "base": model.get("base"), "rank": model.get("rank")}))
        return
    try:
        with open_local(Settings()) as local:
            adapter = local.services.adapters.import_upload(
                owner_id=local.owner_id(api_key),
                upload=file,
                base_id=base,
                name=name,
                trigger_word=trigger_word,
                tags=parse_tags(tags),
            )
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    console.print(json.dumps({"id": adapter.id, "base": adapter.base_id, "rank": adapter.rank}))


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="Who the key is for")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the new user admin rights")] = False,
    user: Annotated[str | None, typer.Option(help="Add the key to this existing user id instead")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored). Works on the home, as the server's admin.

    The first key on a home where single-user mode left data gets that data (datasets, adapters, jobs, ...).
    """
    from genfoundry.errors import GenfoundryError
    from genfoundry.repo import users as users_repo
    from genfoundry.services.local import open_database

    try:
        with open_database(Settings()) as session:
            new = users_repo.create_key(session=session, name=name, is_admin=admin, user_id=user, adopt_local=True)
            session.commit()
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    if new.adopted:
        owned = ", ".join(f"{count} {kind}" for kind, count in new.adopted.items())
        err_console.print(f"the first key owns what single-user mode made: {owned}")
    err_console.print(f"key id {new.record.id} for user {new.record.user_id}; store it now, it is not shown again:")
    print(new.key)


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key (never the key itself)")] = False,
) -> None:
    """List keys (never the keys themselves)."""
    from genfoundry.repo import users as users_repo
    from genfoundry.services.local import open_database

    with open_database(Settings()) as session:
        rows = users_repo.list_keys(session=session)
    if as_json:
        for key, user in rows:
            typer.echo(json.dumps(_key_json(key, user)))
        return
    table = Table("id", "name", "prefix", "user", "admin", "created", "last used", "revoked")
    for key, user in rows:
        table.add_row(
            key.id,
            key.name,
            key.prefix + "…",
            user.id,
            "yes" if user.is_admin else "",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    print_table(table, console=console)


def _key_json(key: Any, user: Any) -> dict[str, Any]:
    def when(moment: Any) -> int | None:
        return int(moment.timestamp()) if moment is not None else None

    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "user": user.id,
        "admin": bool(user.is_admin),
        "created": when(key.created_at),
        "last_used": when(key.last_used_at),
        "revoked": when(key.revoked_at),
    }


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="Key id from `keys list`")]) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from genfoundry.errors import GenfoundryError
    from genfoundry.repo import users as users_repo
    from genfoundry.services.local import open_database

    try:
        with open_database(Settings()) as session:
            users_repo.revoke_key(session=session, key_id=key_id)
            session.commit()
    except GenfoundryError as exc:
        raise _fail(exc.message) from None
    console.print(f"revoked {key_id}")


app.command()(classify)
