"""create_app(settings): wiring only. Services are built in the lifespan; nothing at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from genfoundry.api.admission import AdmissionGate
from genfoundry.api.errors import install_error_handlers
from genfoundry.api.main import api_router
from genfoundry.api.metrics import Metrics
from genfoundry.api.middleware import BodyLimitMiddleware, MetricsMiddleware
from genfoundry.api.openapi import install_openapi
from genfoundry.config import Settings
from genfoundry.inference.long_lived_heap import freeze_long_lived_objects
from genfoundry.repo import users as users_repo
from genfoundry.services import Services, build_services
from genfoundry.services.authentication import is_loopback
from genfoundry.web.headers import SecurityHeadersMiddleware
from genfoundry.web.pages import STATIC_DIR
from genfoundry.web.pages import router as studio_router

logger = logging.getLogger("genfoundry")


class UnsafeBindError(RuntimeError):
    """Refusing to serve without API keys on a non-loopback address."""


def auth_mode(*, has_keys: bool, host: str) -> str:
    """'keys' or 'single-user'; raises when no key exists and the bind address is not loopback."""
    if has_keys:
        return "keys"
    if not is_loopback(host):
        raise UnsafeBindError(
            f"no API key exists, so serving on {host} would be open to anyone: create one with "
            "`genfoundry keys create --name NAME`, or bind to 127.0.0.1"
        )
    return "single-user"


def log_to_stderr(level: str) -> None:
    """Show genfoundry's own log lines at `level` and above on stderr, the way uvicorn shows its own (libraries'
    loggers are left alone: their info lines are not for a server's operator)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def check_auth_mode(services: Services) -> str:
    with services.sessions() as session:
        has_keys = users_repo.count_keys(session=session) > 0
    return auth_mode(has_keys=has_keys, host=services.settings.host)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await run_in_threadpool(build_services, settings)
        try:
            mode = check_auth_mode(services)
        except UnsafeBindError:
            services.close()
            raise
        if mode == "single-user":
            logger.warning(
                "single-user mode: no API keys exist, so requests need no key (loopback only). "
                "Create a key with `genfoundry keys create --name NAME` to require keys."
            )
        logger.info("default models: %s", services.defaults.summary())
        recovered = await run_in_threadpool(services.jobs.recover)
        if recovered:
            logger.warning("%d jobs a previous server left running (job, now): %s", len(recovered), recovered)
        services.jobs.serve()
        if settings.router.preload:
            services.classifiers.preload()
        for kind, engine in (("image", services.image_engine), ("text", services.text_engine)):
            metrics.watch_engine(kind, engine.stats, engine.counter_names)
        app.state.services = services
        freeze_long_lived_objects()  # what start-up built lives as long as the server
        try:
            yield
        finally:
            await run_in_threadpool(services.close)

    app = FastAPI(
        title="genfoundry",
        version="0.1.0",
        description="Datasets to fine-tuned generative models, served behind one OpenAI-compatible API.",
        lifespan=lifespan,
        docs_url=None,  # the studio's router serves /docs from vendored assets (offline)
        redoc_url=None,
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(studio_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app)
    # Innermost of ours: the body limit applies first and metrics count its 503s.
    app.add_middleware(AdmissionGate, routes=app.routes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.limits.max_body_bytes,
        upload_limit=settings.datasets.max_zip_bytes,
        upload_prefixes=("/v1/datasets", "/v1/files"),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    return app
