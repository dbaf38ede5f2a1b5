"""The studio in a real browser: one `genfoundry serve` subprocess on a fresh home (tiny models, keys for alice,
bob, carol and an admin), Debian's chromium driven by Playwright (`executable_path`; nothing is downloaded), a page per
user whose tab holds that user's key, and checks every page gets: no script error, no CSP violation, no Alpine
expression error, screenshots at desktop and 360 px width, and axe-core with no serious or critical violation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from genfoundry.config import Settings
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from tests.conftest import free_port, make_home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What a page must never print: a blocked script or style, a broken Alpine expression.
CONSOLE_DEFECTS = ("Content Security Policy", "Refused to", "Alpine Expression Error", "CSP Parser Error")


def chromium_path() -> str | None:
    return os.environ.get("GENFOUNDRY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class StudioServer:
    url: str
    home: Path
    keys: dict[str, str]
    process: subprocess.Popen[bytes]

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.keys[user]}"}, timeout=120)


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Iterator[StudioServer]:
    """`genfoundry serve` as a user starts it, in key mode, on its own home."""
    base = tmp_path_factory.mktemp("studio")
    home = make_home(base, tiny_dir)
    port = free_port()
    env = {**os.environ, "GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": str(port)}
    # Dataset URLs may point at 127.0.0.2 only (tests/conftest.py's image server); 127.0.0.1 stays refused.
    env["GENFOUNDRY_DATASETS__ALLOWED_FETCH_NETWORKS"] = '["127.0.0.2/32"]'
    settings = Settings(home=home)
    with open_database(settings) as session:
        keys = {
            "alice": users_repo.create_key(session=session, name="alice").key,
            "bob": users_repo.create_key(session=session, name="bob").key,
            "carol": users_repo.create_key(session=session, name="carol").key,  # the walk-through's, from scratch
            "admin": users_repo.create_key(session=session, name="admin", is_admin=True).key,
        }
        session.commit()
    log = (base / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "genfoundry", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"genfoundry serve exited: {(base / 'serve.log').read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"genfoundry serve did not get ready: {(base / 'serve.log').read_text()[-4000:]}")
        time.sleep(0.2)
    yield StudioServer(url=url, home=home, keys=keys, process=process)
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium: `make test` installs Debian's chromium (scripts/ensure-chromium.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots go: the test session's temp dir, or GENFOUNDRY_SCREENSHOTS when set."""
    wanted = os.environ.get("GENFOUNDRY_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        return Path(wanted)
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class Studio:
    """One browser context: a person in a tab, with or without a key."""

    server: StudioServer
    page: Page
    screenshots: Path
    defects: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(self.server.url + path)
        return self.page

    def check_page(self, name: str) -> None:
        """Screenshots at desktop and 360 px wide, and no serious or critical axe-core violation at either."""
        page = self.page
        for width, height, label in ((1280, 900, "desktop"), (360, 780, "360")):
            page.set_viewport_size({"width": width, "height": height})
            settle(page)
            page.screenshot(path=str(self.screenshots / f"{name}-{label}.png"), full_page=True)
            overflow = page.evaluate("() => document.documentElement.scrollWidth") - width
            assert overflow <= 0, f"{name} at {label}: the page is {overflow} px wider than the window"
            violations = axe_violations(page)
            assert not violations, f"{name} at {label}: " + json.dumps(violations, indent=1)
        page.set_viewport_size({"width": 1280, "height": 900})
        settle(page)  # a click right after lands where a person would click, not where the 360 px layout was


def settle(page: Page) -> None:
    """Until the page has laid itself out again (two animation frames) after a resize."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def axe_violations(page: Page) -> list[dict[str, object]]:
    """Serious and critical axe-core violations on the page (axe is evaluated through the DevTools protocol, so
    the page's CSP, which allows no injected script, stays as strict as users get it)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations
              .filter((v) => v.impact === "serious" || v.impact === "critical")
              .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
        }"""
    )
    return list(found)


@pytest.fixture
def studio_for(
    browser: Browser, studio_server: StudioServer, screenshots_dir: Path
) -> Iterator[Callable[[str | None], Studio]]:
    """`studio_for("alice")`: a fresh tab whose session storage holds alice's key (None: no key)."""
    contexts: list[BrowserContext] = []
    made: list[Studio] = []

    def make(user: str | None) -> Studio:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        if user is not None:
            key = json.dumps(studio_server.keys[user])
            context.add_init_script(f"window.sessionStorage.setItem('genfoundry.apiKey', {key});")
        page = context.new_page()
        page.set_default_timeout(30_000)
        studio = Studio(server=studio_server, page=page, screenshots=screenshots_dir)
        page.on("pageerror", lambda error: studio.defects.append(f"uncaught: {error}"))
        page.on(
            "console",
            lambda message: (
                studio.defects.append(f"console: {message.text}")
                if any(marker in message.text for marker in CONSOLE_DEFECTS)
                else None
            ),
        )
        made.append(studio)
        return studio

    yield make
    for context in contexts:
        context.close()
    defects = [defect for studio in made for defect in studio.defects]
    assert not defects, "\n".join(defects)
