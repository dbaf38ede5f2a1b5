"""History of generated images: list, favorite / rate / give feedback, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from genfoundry.api.deps import PrincipalDep, ServicesDep
from genfoundry.db.tables import Generation
from genfoundry.repo import generations as generations_repo
from genfoundry.schemas import DeletedPublic, GenerationPublic, GenerationUpdate, ListPublic
from genfoundry.services import Services

router = APIRouter(prefix="/v1/generations", tags=["generations"])


def to_public(services: Services, request: Request, row: Generation) -> GenerationPublic:
    return GenerationPublic(
        id=row.id,
        created=int(row.created_at.timestamp()),
        kind=row.kind,
        model=row.model,
        base=row.base_id,
        prompt=row.prompt,
        revised_prompt=row.revised_prompt,
        negative_prompt=row.negative_prompt,
        params=row.params,
        seed=row.seed,
        width=row.width,
        height=row.height,
        url=services.signer.image_url(str(request.base_url), row.id),
        generation_time_s=row.generation_time_s,
        favorite=row.favorite,
        rating=row.rating,
        feedback=row.feedback,
    )


@router.get("")
async def read_generations(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    favorite: bool | None = None,
    model: Annotated[str | None, Query(max_length=120)] = None,
) -> ListPublic[GenerationPublic]:
    """Newest first; pass the last id of a page as `after` for the next."""

    def load() -> ListPublic[GenerationPublic]:
        with services.sessions() as session:
            rows, has_more = generations_repo.list_generations(
                session=session,
                owner_id=principal.user_id,
                limit=limit,
                after=after,
                favorite=favorite,
                model=model,
            )
            return ListPublic(data=[to_public(services, request, row) for row in rows], has_more=has_more)

    return await run_in_threadpool(load)


@router.get("/{generation_id}")
async def read_generation(
    generation_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> GenerationPublic:
    def load() -> GenerationPublic:
        with services.sessions() as session:
            row = generations_repo.require_generation(
                session=session, owner_id=principal.user_id, generation_id=generation_id
            )
            return to_public(services, request, row)

    return await run_in_threadpool(load)


@router.patch("/{generation_id}")
async def update_generation(
    generation_id: str,
    body: GenerationUpdate,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> GenerationPublic:
    """Set `favorite`, `rating` (1–5) or `feedback`; fields left out are unchanged."""

    def update() -> GenerationPublic:
        with services.sessions() as session:
            row = generations_repo.require_generation(
                session=session, owner_id=principal.user_id, generation_id=generation_id
            )
            for name, value in body.model_dump(exclude_unset=True).items():
                setattr(row, name, value)
            session.commit()
            return to_public(services, request, row)

    return await run_in_threadpool(update)


@router.delete("/{generation_id}")
async def delete_generation(generation_id: str, services: ServicesDep, principal: PrincipalDep) -> DeletedPublic:
    await run_in_threadpool(services.images.delete, owner_id=principal.user_id, generation_id=generation_id)
    return DeletedPublic(id=generation_id, object="generation")
