"""`genfoundry classify TEXT...`: label and scores per text, on the server when one answers or in-process."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from genfoundry.cli_target import ApiKeyOption, LocalOption, ServerOption, choose_server
from genfoundry.config import Settings

console = Console()
err_console = Console(stderr=True)


def classify_local(settings: Settings, api_key: str | None, texts: list[str], model: str | None) -> dict[str, Any]:
    """Classify in this process through the same service the API uses; the response body /v1/classify gives."""
    from genfoundry.errors import Invalid
    from genfoundry.presenters.classify import classify_response
    from genfoundry.services.local import open_local

    for index, text in enumerate(texts):  # before loading anything
        if not text.strip():
            raise Invalid(f"text {index + 1} is empty or only whitespace", param="input")
    with open_local(settings) as local:
        result = local.services.classifiers.classify(local.owner_id(api_key), texts, model)
    return classify_response(result).model_dump()


def classify_remote(server: str, api_key: str | None, texts: list[str], model: str | None) -> dict[str, Any]:
    import httpx

    from genfoundry.errors import GenfoundryError

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    payload: dict[str, Any] = {"input": texts, **({"model": model} if model else {})}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=httpx.Timeout(120, connect=10)) as client:
        response = client.post("/v1/classify", json=payload)
    if not response.is_success:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise GenfoundryError(f"server answered {response.status_code}: {message}")
    body: dict[str, Any] = response.json()
    return body


def classify(
    texts: Annotated[list[str], typer.Argument(help="One or more texts (quote each)")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="A custom classifier id (default: the prompt router)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the API's JSON response")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    in_process: LocalOption = False,
) -> None:
    """Classify texts: image / diagram / chat with the default router, or a custom classifier's labels."""
    from genfoundry.errors import GenfoundryError

    target = choose_server(server, in_process)
    try:
        if target is not None:
            body = classify_remote(target, api_key, texts, model)
        else:
            body = classify_local(Settings(), api_key, texts, model)
    except GenfoundryError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(code=1) from None
    if json_output:
        for item in body["data"]:
            item["input"] = texts[item["index"]]
        print(json.dumps(body, ensure_ascii=False))
        return
    for item in body["data"]:
        ranked = sorted(item["scores"].items(), key=lambda pair: -pair[1])
        scores = "  ".join(f"{label} {score:.3f}" for label, score in ranked)
        flag = "  [yellow](ambiguous)[/yellow]" if item["ambiguous"] else ""
        console.print(
            f"[bold]{item['label']}[/bold]  {scores}{flag}  [dim]{texts[item['index']]}[/dim]", highlight=False
        )
