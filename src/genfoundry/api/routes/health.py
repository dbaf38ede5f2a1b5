"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genfoundry.api.deps import MetricsDep, ServicesDep
from genfoundry.api.errors import error_response
from genfoundry.db.session import database_reachable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def read_ready(services: ServicesDep) -> Response | dict[str, object]:
    if not database_reachable(services.db_engine):
        return error_response(503, "database is not reachable", error_type="server_error", code="not_ready")
    return {"status": "ready", "models": sorted(services.catalog.models)}


@router.get("/metrics")
async def read_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
