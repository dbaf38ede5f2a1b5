"""Dependencies: the only place that reads app.state. Handlers declare `services: ServicesDep` etc."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from genfoundry.api.metrics import Metrics
from genfoundry.errors import Forbidden, Unauthorized
from genfoundry.repo import users as users_repo
from genfoundry.services import Services


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Principal:
    user_id: str
    is_admin: bool


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


def _authenticate(services: Services, token: str | None) -> Principal:
    with services.sessions() as session:
        if users_repo.count_keys(session=session) == 0 and is_loopback(services.settings.host):
            try:
                user = users_repo.get_or_create_local_user(session=session)
                session.commit()
            except IntegrityError:  # a concurrent first request created the local user a moment ago
                session.rollback()
                user = users_repo.get_or_create_local_user(session=session)
            return Principal(user_id=user.id, is_admin=True)
        if token is None:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        found = users_repo.authenticate(session=session, key=token)
        if found is None:
            raise Unauthorized("invalid or revoked API key")
        session.commit()
        return Principal(user_id=found.id, is_admin=found.is_admin)


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """The caller: a key's user, or the local user in single-user mode (no keys exist, loopback-only)."""
    return await run_in_threadpool(_authenticate, services, bearer_token(request))


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
