"""Prompt classification (`POST /v1/classify`) and routing (`POST /v1/route`) with the shipped router or a
caller's own classifier."""

from __future__ import annotations

from fastapi import APIRouter

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.classify import classify_response, route_public
from genfoundry.schemas import ClassifyRequest, ClassifyResponse, RoutePublic, RouteRequest

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post("/classify")
def create_classification(body: ClassifyRequest, services: ServicesDep, principal: PrincipalDep) -> ClassifyResponse:
    """Label each input (`image`, `diagram`, `chat` for the default router) with per-label scores summing to 1."""
    return classify_response(services.classifiers.classify(principal.user_id, body.texts(), body.model))


@router.post("/route")
def create_route(body: RouteRequest, services: ServicesDep, principal: PrincipalDep) -> RoutePublic:
    """Which capability answers the last user message of a chat: `image`, `diagram` or `chat`, and why."""
    return route_public(services.classifiers.route(principal.user_id, body.messages, body.model))
