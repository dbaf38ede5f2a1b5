"""History of generated images: list, favorite / rate / give feedback, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.presenters.images import generation_public
from genfoundry.schemas import DeletedPublic, GenerationPublic, GenerationUpdate, ListPublic

router = APIRouter(prefix="/v1/generations", tags=["generations"])


@router.get("")
def read_generations(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    favorite: bool | None = None,
    model: Annotated[str | None, Query(max_length=120)] = None,
    adapter: Annotated[str | None, Query(max_length=120, description="made with this adapter")] = None,
    min_rating: Annotated[int | None, Query(ge=1, le=5, description="rated at least this")] = None,
    q: Annotated[str | None, Query(max_length=500, description="text in the prompt, any case")] = None,
) -> ListPublic[GenerationPublic]:
    """Newest first; pass the last id of a page as `after` for the next. Filters combine."""
    rows, has_more = services.images.list_generations(
        owner_id=principal.user_id,
        limit=limit,
        after=after,
        favorite=favorite,
        model=model,
        adapter=adapter,
        min_rating=min_rating,
        text=q,
    )
    base_url = str(request.base_url)
    data = [generation_public(row, signer=services.signer, base_url=base_url) for row in rows]
    return ListPublic(data=data, has_more=has_more)


@router.get("/{generation_id}")
def read_generation(
    generation_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> GenerationPublic:
    row = services.images.get_generation(owner_id=principal.user_id, generation_id=generation_id)
    return generation_public(row, signer=services.signer, base_url=str(request.base_url))


@router.patch("/{generation_id}")
def update_generation(
    generation_id: str,
    body: GenerationUpdate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> GenerationPublic:
    """Set `favorite`, `rating` (1–5) or `feedback`; fields left out are unchanged."""
    row = services.images.update_generation(
        owner_id=principal.user_id, generation_id=generation_id, changes=body.model_dump(exclude_unset=True)
    )
    return generation_public(row, signer=services.signer, base_url=str(request.base_url))


@router.delete("/{generation_id}")
def delete_generation(generation_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    services.images.delete(owner_id=principal.user_id, generation_id=generation_id)
    return DeletedPublic(id=generation_id, object="generation")
