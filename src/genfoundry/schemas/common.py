"""Shapes every resource shares: lists, deletions, errors, the one seed type, and the finite-number check."""

from __future__ import annotations

import math
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, Field

T = TypeVar("T")

SEED_MAX = 2**32 - 1
# One range for every seed the API takes (images, text, diagrams, fine-tuning): what torch and diffusers
# reproduce on every device, and what a BigInteger column keeps.
Seed = Annotated[int, Field(ge=0, le=SEED_MAX, description="0 to 2**32-1; the same seed gives the same output")]


def require_finite(value: object) -> object:
    """NaN and ±Infinity (Python's JSON parser accepts them) are refused before any range check can misname them."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value  # not a number at all: the field's own validation says so
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return value


# Put after the field's Field(...) range in `Annotated[float, Field(...), FINITE]`, so the range stays in the schema.
FINITE = BeforeValidator(require_finite)


class ListPublic(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool = False


class DeletedPublic(BaseModel):
    id: str
    object: str
    deleted: bool = True


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
