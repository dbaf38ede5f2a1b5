"""PlantUML syntax checks and renders: `check(plantuml)` and `render(plantuml, fmt)`.

Every call screens the source first (security.py), waits for one of `max_concurrent_renders` slots (503 when
none frees within the time limit), runs under the time limit, and refuses output over the size caps (413).
`LocalRenderer` talks to one long-lived PlantUML process (process.py); `ServerRenderer` to a plantuml-server.
"""

from __future__ import annotations

import base64
import json
import logging
import string
import threading
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import httpx

from genfoundry.config import DiagramSettings
from genfoundry.diagrams.jvm_records import end_orphaned_jvms
from genfoundry.diagrams.launcher import LAUNCHER_CLASS
from genfoundry.diagrams.process import PlantUmlProcess
from genfoundry.diagrams.report import (
    DiagramError,
    DiagramFormat,
    RenderedDiagram,
    RendererUnavailable,
    SyntaxReport,
    declared_size,
    diagram_type,
    image_size,
    structure_error,
    syntax_errors,
)
from genfoundry.diagrams.runtime import LAYOUT_PRAGMA, find_java, find_plantuml_jar
from genfoundry.diagrams.security import ScreenedSource, screen_source
from genfoundry.errors import Invalid, Overloaded, TooLarge, Unprocessable

logger = logging.getLogger(__name__)

FORMATS: tuple[DiagramFormat, ...] = ("png", "svg")
_BASE64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
_PLANTUML64 = string.digits + string.ascii_uppercase + string.ascii_lowercase + "-_"
_TO_PLANTUML64 = bytes.maketrans(_BASE64.encode(), _PLANTUML64.encode())
# PlantUML's server closes every connection after its answer; a pooled connection would fail on its next use.
_RENDER_HEADERS = {"Content-Type": "application/json", "Connection": "close"}
_WARM_UP = (
    "@startuml\nclass Order {\n  +id: int\n}\nclass Item\nOrder *-- Item\n@enduml",
    "@startuml\nAlice -> Bob: hello\nBob --> Alice: hi\n@enduml",
)


def encode_source(text: str) -> str:
    """PlantUML's URL encoding of a source (raw deflate, then base64 over its own alphabet) for GET /png/..."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(text.encode("utf-8")) + compressor.flush()
    data += b"\0" * (-len(data) % 3)  # PlantUML pads the last group with zero bytes, never with '='
    return base64.b64encode(data).translate(_TO_PLANTUML64).decode("ascii")


@dataclass(frozen=True)
class PlantUmlResponse:
    status: int
    headers: dict[str, str]
    content: bytes


def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, refusing (413) past `max_bytes` without reading the rest."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(
                f"the rendered diagram is over the {max_bytes}-byte output limit",
                param="plantuml",
                code="diagram_too_large",
            )
        chunks.append(chunk)
    return b"".join(chunks)


class PlantUmlRenderer(ABC):
    """Checks and renders PlantUML; thread-safe."""

    def __init__(self, settings: DiagramSettings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_renders)

    # 1. The public calls.
    def check(self, plantuml: str) -> SyntaxReport:
        """PlantUML's own verdict on `plantuml`: valid or not, the diagram type, the errors with their line."""
        screened = self._screen(plantuml)
        broken = structure_error(screened.text, line_offset=screened.line_offset)
        if broken is not None:
            return SyntaxReport(valid=False, diagram_type=None, errors=[broken])
        try:
            response = self._run(screened, "svg")
        except Unprocessable as exc:
            if exc.code != "render_failed":
                raise
            return SyntaxReport(valid=False, diagram_type=None, errors=[DiagramError(None, exc.message)])
        errors = syntax_errors(response.headers, line_offset=screened.line_offset, line_count=screened.caller_lines)
        kind = None if errors else diagram_type(response.content, "svg")
        return SyntaxReport(valid=not errors, diagram_type=kind, errors=errors)

    def render(self, plantuml: str, fmt: DiagramFormat = "png") -> bytes:
        """The image of `plantuml`; invalid PlantUML is a 422 carrying the errors with their line."""
        return self.render_diagram(plantuml, fmt).data

    def render_diagram(self, plantuml: str, fmt: DiagramFormat = "png") -> RenderedDiagram:
        """Like `render`, with the image's size, the diagram type and the time it took."""
        if fmt not in FORMATS:
            raise Invalid(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", param="format")
        started = time.perf_counter()
        screened = self._screen(plantuml)
        broken = structure_error(screened.text, line_offset=screened.line_offset)
        if broken is not None:
            raise _invalid([broken])
        kind: str | None = None
        if fmt == "png":
            # The SVG pass is cheap: it finds errors, the type and the size before any pixels are drawn.
            svg = self._run(screened, "svg")
            self._raise_errors(svg, screened)
            self._check_size(svg, "svg")
            kind = diagram_type(svg.content, "svg")
        response = self._run(screened, fmt)
        self._raise_errors(response, screened)
        width, height = self._check_size(response, fmt)
        if fmt == "svg":
            kind = diagram_type(response.content, "svg")
        return RenderedDiagram(
            data=response.content,
            format=fmt,
            width=width,
            height=height,
            diagram_type=kind,
            render_time_s=time.perf_counter() - started,
        )

    @abstractmethod
    def close(self) -> None:
        """Release what the renderer holds (the local process, the HTTP client)."""

    # 2. Shared steps.
    def _screen(self, plantuml: str) -> ScreenedSource:
        return screen_source(
            plantuml, max_chars=self.settings.max_source_chars, max_lines=self.settings.max_source_lines
        )

    def _run(self, screened: ScreenedSource, fmt: DiagramFormat) -> PlantUmlResponse:
        if not self._slots.acquire(timeout=self.settings.timeout_s):
            raise Overloaded("every diagram render slot is busy; retry shortly", retry_after=1.0)
        try:
            return self._fetch(screened.text, fmt)
        finally:
            self._slots.release()

    def _raise_errors(self, response: PlantUmlResponse, screened: ScreenedSource) -> None:
        errors = syntax_errors(response.headers, line_offset=screened.line_offset, line_count=screened.caller_lines)
        if errors:
            raise _invalid(errors)

    def _check_size(self, response: PlantUmlResponse, fmt: DiagramFormat) -> tuple[int, int]:
        drawn_width, drawn_height = image_size(response.content, fmt)
        laid_width, laid_height = declared_size(response.headers)
        width, height = max(drawn_width, laid_width), max(drawn_height, laid_height)
        limit, pixels = self.settings.max_side_px, self.settings.max_pixels
        if width > limit or height > limit or width * height > pixels:
            raise TooLarge(
                f"the diagram would render {width}×{height} px, over the limit of {limit} px a side "
                f"and {pixels} pixels",
                param="plantuml",
                code="diagram_too_large",
                details={"width": width, "height": height},
            )
        if drawn_width == 0 or drawn_height == 0:
            raise Unprocessable("PlantUML produced no image for this diagram", param="plantuml", code="render_failed")
        return drawn_width, drawn_height

    def _timed_out(self) -> TooLarge:
        return TooLarge(
            f"rendering took longer than {self.settings.timeout_s:g} s; simplify the diagram",
            param="plantuml",
            code="render_timeout",
        )

    @abstractmethod
    def _fetch(self, source: str, fmt: DiagramFormat) -> PlantUmlResponse:
        """One render of already screened `source` by PlantUML."""


class LocalRenderer(PlantUmlRenderer):
    """One long-lived PlantUML process on a loopback port, started on first use, restarted when it dies."""

    def __init__(
        self, settings: DiagramSettings, *, work_dir: Path, warm_up_sources: tuple[str, ...] = _WARM_UP
    ) -> None:
        super().__init__(settings)
        self.work_dir = work_dir
        self.warm_up_sources = warm_up_sources
        # A JVM a killed server left on this home goes now, not when this one first draws (it holds ~200 MiB).
        end_orphaned_jvms(work_dir, marker=LAUNCHER_CLASS)
        self._process: PlantUmlProcess | None = None
        self._process_lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s, connect=5.0), trust_env=False, follow_redirects=False
        )

    @property
    def process(self) -> PlantUmlProcess:
        """The process owner (the JVM itself starts on the first render); finds Java and the jar on first use."""
        with self._process_lock:
            if self._process is None:
                settings = self.settings
                self._process = PlantUmlProcess(
                    java=find_java(settings.java),
                    jar=find_plantuml_jar(settings.plantuml_jar),
                    work_dir=self.work_dir,
                    heap_mb=settings.java_heap_mb,
                    limit_size_px=settings.max_side_px,
                    start_timeout_s=settings.start_timeout_s,
                    warm_up=self._warm_up,
                )
            return self._process

    def _warm_up(self, url: str) -> None:
        with httpx.Client(timeout=self.settings.start_timeout_s, trust_env=False) as client:
            for source in self.warm_up_sources:
                client.post(
                    f"{url}/render", content=_render_body(source, "svg"), headers=_RENDER_HEADERS
                ).raise_for_status()

    def _fetch(self, source: str, fmt: DiagramFormat) -> PlantUmlResponse:
        process = self.process
        running = process.running()
        for attempt in (1, 2):
            try:
                return self._post(running.url, source, fmt)
            except httpx.TimeoutException as exc:
                # PlantUML keeps working on a render nobody waits for: stopping the JVM is what ends it.
                logger.warning("PlantUML render past %.1f s; restarting the process", self.settings.timeout_s)
                process.stop(running.generation)
                raise self._timed_out() from exc
            except httpx.TransportError as exc:
                # The process is dying or gone (every connection is fresh, so a failure is never a stale one);
                # renders are idempotent: replace the process (unless another caller already did) and retry once.
                process.stop(running.generation)
                if attempt == 2:
                    raise RendererUnavailable("PlantUML stopped while rendering; retry shortly") from exc
                logger.warning("PlantUML connection failed (%s); restarting it", exc)
                running = process.running()
        raise AssertionError("unreachable")

    def _post(self, url: str, source: str, fmt: DiagramFormat) -> PlantUmlResponse:
        body = _render_body(source, fmt)
        with self._client.stream("POST", f"{url}/render", content=body, headers=_RENDER_HEADERS) as response:
            content = read_capped(response, self.settings.max_output_bytes)
            if response.status_code >= 400:
                # PlantUML threw on this input; its answer is a stack trace, which stays in our log.
                logger.warning(
                    "PlantUML failed (%d): %s", response.status_code, content[:2000].decode(errors="replace")
                )
                raise Unprocessable("PlantUML could not render this diagram", param="plantuml", code="render_failed")
            return PlantUmlResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content)

    def close(self) -> None:
        with self._process_lock:
            if self._process is not None:
                self._process.close()
        self._client.close()


class ServerRenderer(PlantUmlRenderer):
    """An external plantuml-server (or any PlantUML HTTP server): GET /{format}/{encoded source}."""

    def __init__(self, settings: DiagramSettings) -> None:
        super().__init__(settings)
        if not settings.server_url:
            raise ValueError("ServerRenderer needs diagrams.server_url")
        self.server_url = settings.server_url.rstrip("/")
        # The server is named in settings and usually internal: no proxy from the environment in between.
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s, connect=5.0), trust_env=False, follow_redirects=False
        )

    def _fetch(self, source: str, fmt: DiagramFormat) -> PlantUmlResponse:
        url = f"{self.server_url}/{fmt}/{encode_source(source)}"
        for attempt in (1, 2):
            try:
                with self._client.stream("GET", url) as response:
                    content = read_capped(response, self.settings.max_output_bytes)
                    headers = {k.lower(): v for k, v in response.headers.items()}
                break
            except httpx.TimeoutException as exc:
                raise self._timed_out() from exc
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # A kept-alive connection the server had closed (PlantUML's own server closes every one): a GET
                # is safe to send again, once, on a new connection.
                if attempt == 2:
                    raise RendererUnavailable(f"the PlantUML server at {self.server_url} did not answer") from exc
            except httpx.TransportError as exc:
                raise RendererUnavailable(f"the PlantUML server at {self.server_url} did not answer") from exc
        # plantuml-server answers a syntax error with 400 and the error headers; anything else non-2xx is its fault.
        if response.status_code >= 300 and "x-plantuml-diagram-error" not in headers:
            raise RendererUnavailable(f"the PlantUML server at {self.server_url} answered {response.status_code}")
        return PlantUmlResponse(response.status_code, headers, content)

    def close(self) -> None:
        self._client.close()


def _invalid(errors: list[DiagramError]) -> Unprocessable:
    first = errors[0]
    where = f"line {first.line}: " if first.line is not None else ""
    return Unprocessable(
        f"invalid PlantUML: {where}{first.message}",
        param="plantuml",
        code="invalid_plantuml",
        details={"errors": [error.as_dict() for error in errors]},
    )


def _render_body(source: str, fmt: DiagramFormat) -> bytes:
    return json.dumps({"source": source, "options": [f"-t{fmt}", LAYOUT_PRAGMA]}, ensure_ascii=False).encode()


def make_renderer(settings: DiagramSettings, *, work_dir: Path) -> PlantUmlRenderer:
    """The renderer `settings.renderer` names; nothing starts until the first check or render."""
    if settings.renderer == "server":
        return ServerRenderer(settings)
    return LocalRenderer(settings, work_dir=work_dir)
