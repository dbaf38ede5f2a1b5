"""Where a user command runs: on the server at --server / GENFOUNDRY_SERVER when one answers, else in this process on
the home (GENFOUNDRY_HOME); `--local` says in-process outright. Admin commands (serve, keys, models build-tiny) always
work on the home and do not use this."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer
from rich.console import Console

from genfoundry.cli_output import fail
from genfoundry.config import Settings

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="GENFOUNDRY_SERVER",
        help="Server URL (default: http://HOST:PORT from settings, where `genfoundry serve` listens)",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="GENFOUNDRY_API_KEY", help="API key (a single-user loopback server needs none)"),
]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Run in this process on the home (GENFOUNDRY_HOME), not on a server")
]

err_console = Console(stderr=True)
PROBE_TIMEOUT = httpx.Timeout(5, connect=1)  # a refused connection answers at once; a hung server fails in seconds


def default_server() -> str:
    """http://HOST:PORT from the settings `genfoundry serve` uses; a wildcard bind is reached on loopback."""
    settings = Settings()
    wildcard = settings.host in ("", "0.0.0.0", "::")  # noqa: S104 (a client, not a bind)
    host = "127.0.0.1" if wildcard else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def server_answers(url: str) -> bool:
    """Whether a genfoundry server answers its liveness check at `url`."""
    try:
        return httpx.get(f"{url}/healthz", timeout=PROBE_TIMEOUT).is_success
    except httpx.HTTPError:
        return False


def home_is_populated(settings: Settings) -> bool:
    """Whether the home holds anything to work on: its database or models (or a database elsewhere by URL)."""
    return settings.database_url is not None or any(
        path.exists() for path in (settings.home / "genfoundry.db", settings.home / "models")
    )


def choose_server(server: str | None, local: bool) -> str | None:
    """The URL of the server the command talks to, or None to run it in this process on the home.

    A server named by --server / GENFOUNDRY_SERVER must answer; the default one is used when it answers, else a
    populated home is worked on in-process (said on stderr); with neither, the command ends saying what to run.
    """
    if local:
        return None
    url = (server or default_server()).rstrip("/")
    if server_answers(url):
        return url
    if server is not None:
        raise fail(
            f"no genfoundry server answers at {url} (--server / GENFOUNDRY_SERVER): start one with `make serve` "
            "(or `genfoundry serve`), or run in this process on the home with --local"
        )
    settings = Settings()
    if home_is_populated(settings):
        err_console.print(f"no server at {url}: working in this process on {settings.home}", highlight=False)
        return None
    raise fail(
        f"no genfoundry server answers at {url} and the home {settings.home} is empty: start the server with "
        "`make serve`, or build the offline models with `genfoundry models build-tiny` to work in-process, or "
        "name a running server with --server URL (GENFOUNDRY_HOME picks another home; --local runs here anyway)"
    )
