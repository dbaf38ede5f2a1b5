"""Prompt classification (`POST /v1/classify`) and routing (`POST /v1/route`) with the shipped router or a
caller's own classifier."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.router.head import Prediction
from genfoundry.schemas import ClassificationPublic, ClassifyRequest, ClassifyResponse, RoutePublic, RouteRequest

router = APIRouter(prefix="/v1", tags=["classify"])


def classification_public(index: int, prediction: Prediction) -> ClassificationPublic:
    return ClassificationPublic(
        index=index,
        label=prediction.label,
        scores=prediction.scores,
        ambiguous=prediction.ambiguous,
        margin=round(prediction.margin, 6),
    )


@router.post("/classify")
async def create_classification(
    body: ClassifyRequest, services: ServicesDep, principal: PrincipalDep
) -> ClassifyResponse:
    """Label each input (`image`, `diagram`, `chat` for the default router) with per-label scores summing to 1."""
    result = await run_in_threadpool(services.classifiers.classify, principal.user_id, body.texts(), body.model)
    return ClassifyResponse(
        model=result.model,
        data=[classification_public(i, prediction) for i, prediction in enumerate(result.predictions)],
    )


@router.post("/route")
async def create_route(body: RouteRequest, services: ServicesDep, principal: PrincipalDep) -> RoutePublic:
    """Which capability answers the last user message of a chat: `image`, `diagram` or `chat`, and why."""
    decision = await run_in_threadpool(services.classifiers.route, principal.user_id, body.messages, body.model)
    prediction = decision.prediction
    return RoutePublic(
        model=decision.model,
        route=prediction.label,
        label=prediction.label,
        scores=prediction.scores,
        ambiguous=prediction.ambiguous,
        margin=round(prediction.margin, 6),
        message_index=decision.message_index,
    )
