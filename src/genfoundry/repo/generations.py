"""Generated images: history with cursors, favorites, ratings and feedback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, cast, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
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
    adapter: str | None = None,
    min_rating: int | None = None,
    text: str | None = None,
) -> tuple[list[Generation], bool]:
    """Newest first; `after` is the id of the last item of the previous page. Returns (page, has_more).

    `adapter`: made with that adapter (as the model or among the loras); `min_rating`: rated at least that;
    `text`: the prompt contains it, in any case."""
    query = select(Generation).where(Generation.owner_id == owner_id)
    if after is not None:
        cursor = require_generation(session=session, owner_id=owner_id, generation_id=after)
        query = query.where(Generation.seq < cursor.seq)
    if favorite is not None:
        query = query.where(Generation.favorite.is_(favorite))
    if model is not None:
        query = query.where(Generation.model == model)
    if adapter is not None:
        query = query.where(or_(Generation.model == adapter, _used_adapter(session, adapter)))
    if min_rating is not None:
        query = query.where(Generation.rating >= min_rating)
    if text is not None:
        query = query.where(func.lower(Generation.prompt).contains(text.lower(), autoescape=True))
    rows = list(session.scalars(query.order_by(Generation.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def _used_adapter(session: Session, adapter: str) -> ColumnElement[bool]:
    """Whether a row's `params.loras` (every adapter the image was made with) names `adapter`."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(Generation.params, JSONB).contains({"loras": [{"id": adapter}]})
    loras = func.json_each(Generation.params, "$.loras").table_valued("value")
    return exists(select(1).select_from(loras).where(func.json_extract(loras.c.value, "$.id") == adapter))


def newest_generation_ids(*, session: Session, owner_id: str, models: list[str]) -> dict[str, str]:
    """The id of `owner_id`'s newest generation for each of `models` that has one (model id → generation id)."""
    newest = (
        select(func.max(Generation.seq))
        .where(Generation.owner_id == owner_id, Generation.model.in_(models))
        .group_by(Generation.model)
    )
    rows = session.execute(select(Generation.model, Generation.id).where(Generation.seq.in_(newest)))
    return {model: generation_id for model, generation_id in rows}


def delete_generation(*, session: Session, generation: Generation) -> None:
    session.delete(generation)
