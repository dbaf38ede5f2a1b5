"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import MetricsDep, ServicesDep
from genfoundry.api.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def read_ready(services: ServicesDep) -> Response | dict[str, object]:
    def check_database() -> None:
        with services.db_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(check_database)
    except Exception:
        return error_response(503, "database is not reachable", error_type="server_error", code="not_ready")
    return {"status": "ready", "models": sorted(services.catalog.models)}


@router.get("/metrics")
async def read_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
