"""What the studio's HTTP answers promise the browser, checked without one: a strict CSP and nosniff on every page,
static and generated files with their real Content-Type, and templates with nothing the CSP would have to allow."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from genfoundry.web.headers import CONTENT_SECURITY_POLICY
from genfoundry.web.pages import NAVIGATION, WEB_DIR
from tests.conftest import image_bytes
from tests.helpers import make_zip, upload_zip
from tests.web.conftest import StudioServer

TEMPLATES = sorted((WEB_DIR / "templates").glob("*.html"))
PAGES = [page.path for page in NAVIGATION] + ["/datasets/ds_missing", "/training/job_missing", "/docs"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_html_under_the_strict_policy(studio_server: StudioServer, path: str) -> None:
    response = httpx.get(studio_server.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "cdn" not in response.text.lower()  # every asset is served from this origin
    for src in re.findall(r'\s(?:src|href)="([^"]+)"', response.text):
        assert src.startswith(("/", "#")), src


def test_a_hostile_id_in_a_page_path_is_refused(studio_server: StudioServer) -> None:
    for path in ("/datasets/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/training/%3Cimg%20src=x%20onerror=alert(1)%3E"):
        response = httpx.get(studio_server.url + path)
        assert response.status_code in (400, 404), path  # an id never looks like that; a slash in it matches no page
        assert "<script>" not in response.text and "<img" not in response.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/studio/api.js", "text/javascript"),
        ("/static/studio/studio.css", "text/css"),
        ("/static/vendor/alpinejs-csp/alpine-csp.min.js", "text/javascript"),
        ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript"),
        ("/static/studio/favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_have_their_type_and_nosniff(studio_server: StudioServer, path: str, content_type: str) -> None:
    response = httpx.get(studio_server.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_static_paths_cannot_leave_the_static_folder(studio_server: StudioServer) -> None:
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/studio/../../pages.py"):
        assert httpx.get(studio_server.url + path).status_code == 404, path


def test_generated_images_are_served_as_png_with_nosniff(studio_server: StudioServer) -> None:
    with studio_server.client("alice") as client:
        made = client.post(
            "/v1/images/generations", json={"model": "tiny-sd15", "prompt": "a red fox", "size": "64x64", "steps": 2}
        )
        assert made.status_code == 200, made.text
        image = httpx.get(made.json()["data"][0]["url"])
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"


def test_uploaded_images_are_served_with_their_type_and_nosniff(studio_server: StudioServer) -> None:
    """Dataset images (stored normalized) answer with the type their bytes are, never a guessable one."""
    magic = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png"}
    archive = make_zip({"a.jpg": image_bytes((9, 9, 9), fmt="JPEG"), "b.png": image_bytes((1, 2, 3))})
    with studio_server.client("alice") as client:
        made = upload_zip(client, archive, name="typed")
        assert made.status_code == 201, made.text
        dataset_id = made.json()["id"]
        items = client.get(f"/v1/datasets/{dataset_id}/items").json()["data"]
        assert len(items) == 2
        for item in items:
            image = client.get(f"/v1/datasets/{dataset_id}/items/{item['id']}/image")
            assert image.headers["x-content-type-options"] == "nosniff"
            [expected] = [kind for prefix, kind in magic.items() if image.content.startswith(prefix)]
            assert image.headers["content-type"] == expected


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_templates_need_nothing_the_policy_forbids(template: Path) -> None:
    """No inline script or style, no inline event handler, no x-html (user text is only ever set as text)."""
    text = template.read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert "<style" not in text
    assert not re.search(r"\sstyle=", text), "style attribute"
    assert not re.search(r"\son[a-z]+=", text), "inline event handler"
    assert "x-html" not in text
