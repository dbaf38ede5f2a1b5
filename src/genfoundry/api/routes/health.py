"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genfoundry.api.deps import MetricsDep, ServicesDep
from genfoundry.api.errors import error_response
from genfoundry.db.session import database_reachable
from genfoundry.services.model_directory import public_bases_weights

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def read_ready(services: ServicesDep) -> Response | dict[str, object]:
    """Ready when the database answers; says which catalog bases (image and text) are usable here (`models`),
    which are not with the command that fetches them (`unavailable`), and the defaults the server picked."""
    if not database_reachable(services.db_engine):
        return error_response(503, "database is not reachable", error_type="server_error", code="not_ready")
    bases = public_bases_weights(services)
    return {
        "status": "ready",
        "models": sorted(entry.id for entry, weights in bases if weights.present),
        "unavailable": [
            {"id": entry.id, "fetch_command": weights.fetch_command, "size_gb": entry.size_gb}
            for entry, weights in sorted(bases, key=lambda pair: pair[0].id)
            if not weights.present
        ],
        "defaults": services.defaults.as_dict(),
    }


@router.get("/metrics")
async def read_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
