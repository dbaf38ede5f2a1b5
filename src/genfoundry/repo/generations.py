"""Generated images: history with cursors, favorites, ratings and feedback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from genfoundry.db.tables import Generation
from genfoundry.errors import NotFound


def create_generation(*, session: Session, **fields: Any) -> Generation:
    generation = Generation(**fields)
    session.add(generation)
    session.flush()
    return generation


def get_generation(*, session: Session, generation_id: str) -> Generation | None:
    """By id regardless of owner: only for callers that proved access another way (a signed URL)."""
    return session.scalar(select(Generation).where(Generation.id == generation_id))


def require_generation(*, session: Session, owner_id: str, generation_id: str) -> Generation:
    generation = get_generation(session=session, generation_id=generation_id)
    if generation is None or generation.owner_id != owner_id:
        raise NotFound(f"No generation with id '{generation_id}'")
    return generation


def list_generations(
    *,
    session: Session,
    owner_id: str,
    limit: int,
    after: str | None = None,
    favorite: bool | None = None,
    model: str | None = None,
) -> tuple[list[Generation], bool]:
    """Newest first; `after` is the id of the last item of the previous page. Returns (page, has_more)."""
    query = select(Generation).where(Generation.owner_id == owner_id)
    if after is not None:
        cursor = require_generation(session=session, owner_id=owner_id, generation_id=after)
        query = query.where(Generation.seq < cursor.seq)
    if favorite is not None:
        query = query.where(Generation.favorite.is_(favorite))
    if model is not None:
        query = query.where(Generation.model == model)
    rows = list(session.scalars(query.order_by(Generation.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def delete_generation(*, session: Session, generation: Generation) -> None:
    session.delete(generation)
