"""Classification and routing results in /v1/classify's and /v1/route's shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genfoundry.schemas import ClassificationPublic, ClassifyResponse, RoutePublic

if TYPE_CHECKING:
    from genfoundry.router.head import Prediction
    from genfoundry.services.classifiers import Classification, RouteDecision


def classification_public(index: int, prediction: Prediction) -> ClassificationPublic:
    return ClassificationPublic(
        index=index,
        label=prediction.label,
        scores=prediction.scores,
        ambiguous=prediction.ambiguous,
        margin=round(prediction.margin, 6),
    )


def classify_response(result: Classification) -> ClassifyResponse:
    return ClassifyResponse(
        model=result.model,
        data=[classification_public(i, prediction) for i, prediction in enumerate(result.predictions)],
    )


def route_public(decision: RouteDecision) -> RoutePublic:
    """/v1/route's answer: the router's label is the route."""
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


def chat_route_public(decision: RouteDecision, routes: tuple[str, ...]) -> RoutePublic:
    """The `route` of a `model: "auto"` chat answer: a label outside `routes` is answered by chat."""
    label = decision.prediction.label
    return RoutePublic(
        model=decision.model,
        route=label if label in routes else "chat",
        label=label,
        scores=decision.prediction.scores,
        ambiguous=decision.prediction.ambiguous,
        margin=decision.prediction.margin,
        message_index=decision.message_index,
    )
