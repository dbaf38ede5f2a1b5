"""Dependencies: the only place that reads app.state. Handlers declare `services: ServicesDep` etc."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from genfoundry.api.metrics import Metrics
from genfoundry.errors import Forbidden, Unauthorized
from genfoundry.services import Services
from genfoundry.services.authentication import Principal


# async, like every dependency here: FastAPI runs a plain `def` dependency in its threadpool, where under load a
# request would queue behind other requests' blocking work just to read app.state.
async def get_services(request: Request) -> Services:
    return services_of(request.app)


def services_of(app: Any) -> Services:
    """The app's services (built in its lifespan), also for ASGI middleware that runs before routing."""
    services: Services = app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def bearer_token(request: Request) -> str | None:
    """The key in `Authorization: Bearer KEY`, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller: a key's user, or the local user in single-user mode (no keys exist, loopback-only)."""
    return await run_in_threadpool(services.authenticator.authenticate, bearer_token(request))


async def get_optional_principal(request: Request, services: ServicesDep) -> Principal | None:
    """Like get_principal, but None instead of 401, for routes that also accept a signed URL."""
    try:
        return await get_principal(request, services)
    except Unauthorized:
        return None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this needs an admin key (`genfoundry keys create --name NAME --admin`)")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
