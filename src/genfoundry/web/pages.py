"""The studio's pages and the offline API docs: one route per page, each a template rendered without user data
(the server's own defaults at most)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from genfoundry.api.deps import ServicesDep

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")

IdParam = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


@dataclass(frozen=True)
class Page:
    name: str  # the template (`<name>.html`) and the page's script (`static/studio/<name>.js`)
    path: str
    title: str


NAVIGATION = (
    Page("generate", "/", "Generate"),
    Page("gallery", "/gallery", "Gallery"),
    Page("chat", "/chat", "Chat"),
    Page("datasets", "/datasets", "Datasets"),
    Page("training", "/training", "Training"),
    Page("models", "/models", "Models"),
    Page("settings", "/settings", "Settings"),
)
_BY_NAME = {page.name: page for page in NAVIGATION}

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def render(request: Request, template: str, section: str, **context: object) -> HTMLResponse:
    """A page of the studio; `section` is the navigation entry it belongs to."""
    return templates.TemplateResponse(
        request,
        f"{template}.html",
        {"navigation": NAVIGATION, "section": _BY_NAME[section], **context},
    )


def _page(page: Page) -> None:
    def show(request: Request) -> HTMLResponse:
        return render(request, page.name, page.name)

    router.add_api_route(page.path, show, methods=["GET"], name=f"studio_{page.name}")


for _each in NAVIGATION:
    _page(_each)


@router.get("/datasets/{dataset_id}")
def show_dataset(request: Request, dataset_id: IdParam, services: ServicesDep) -> HTMLResponse:
    captioner = services.defaults.captioner.model  # picked at start-up: Florence-2 where cached, else mini-captioner
    return render(request, "dataset", "datasets", dataset_id=dataset_id, default_captioner=captioner)


@router.get("/training/{job_id}")
def show_training_job(request: Request, job_id: IdParam) -> HTMLResponse:
    return render(request, "training_job", "training", job_id=job_id)


@router.get("/docs")
def show_api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from the vendored swagger-ui-dist: works offline, under the same strict CSP as the studio."""
    return templates.TemplateResponse(request, "api_docs.html")
