"""OpenAI-compatible batches: a JSONL file of chat or image requests run in the background (docs/batches.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.batches import batch_list_public, batch_public
from genfoundry.schemas.batches import BatchCreate, BatchListPublic, BatchPublic

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", response_model_exclude_none=True)
def create_batch(body: BatchCreate, request: Request, services: ServicesDep, principal: PrincipalDep) -> BatchPublic:
    """`input_file_id`: your file uploaded with purpose `batch`, one request a line (at most 50,000); `endpoint`:
    /v1/chat/completions, /v1/images/generations or /v1/embeddings. The lines run one at a time, after
    interactive requests (docs/batches.md)."""
    batch = services.batches.create(owner_id=principal.user_id, body=body, base_url=str(request.base_url))
    return batch_public(batch)


@router.get("", response_model_exclude_none=True)
def read_batches(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchListPublic:
    batches, has_more = services.batches.list_batches(owner_id=principal.user_id, limit=limit, after=after)
    return batch_list_public(batches, has_more=has_more)


@router.get("/{batch_id}", response_model_exclude_none=True)
def read_batch(batch_id: str, services: ServicesDep, principal: PrincipalDep) -> BatchPublic:
    return batch_public(services.batches.get(owner_id=principal.user_id, batch_id=batch_id))


@router.post("/{batch_id}/cancel", response_model_exclude_none=True)
def cancel_batch(batch_id: str, services: ServicesDep, principal: PrincipalDep) -> BatchPublic:
    """Lines not yet run are not run; the output and error files keep what ran. Cancelling again answers the
    batch as it is; a batch that already completed, failed or expired is a 409."""
    return batch_public(services.batches.cancel(owner_id=principal.user_id, batch_id=batch_id))
