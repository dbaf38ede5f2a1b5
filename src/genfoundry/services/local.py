"""In-process use of the services by the CLI (no server): the same code paths the API uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from genfoundry.config import Settings
from genfoundry.db.session import make_engine, make_session_factory, upgrade_database
from genfoundry.errors import Unauthorized
from genfoundry.repo import users as users_repo
from genfoundry.schemas import ImageOptions
from genfoundry.services import Services, build_services
from genfoundry.services.model_directory import ModelListing, list_models


@contextmanager
def open_database(settings: Settings) -> Iterator[Session]:
    """A session on the migrated database, without loading any engine (fast: no torch)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade_database(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


class LocalContext:
    def __init__(self, services: Services) -> None:
        self.services = services

    def owner_id(self, api_key: str | None) -> str:
        """The key's user, or the local user when no key is given."""
        with self.services.sessions() as session:
            if api_key:
                user = users_repo.authenticate(session=session, key=api_key)
                if user is None:
                    raise Unauthorized("invalid or revoked API key")
            else:
                user = users_repo.get_or_create_local_user(session=session)
            session.commit()
            return user.id

    def list_models(self) -> ModelListing:
        """Every model on this machine, every user's included: the local operator's view."""
        return list_models(self.services, owner_id=None)


@contextmanager
def open_local(settings: Settings) -> Iterator[LocalContext]:
    services = build_services(settings)
    try:
        yield LocalContext(services)
    finally:
        services.close()


def generate_local(
    settings: Settings, api_key: str | None, fields: dict[str, Any], *, image: Path | None, strength: float
) -> list[tuple[bytes, int, float]]:
    """Run one generation in this process; returns (png bytes, seed, seconds) per image."""
    from genfoundry.datasets.image_checks import open_checked_image

    options = ImageOptions.model_validate(fields)
    with open_local(settings) as local:
        init_image = None
        if image is not None:
            init_image = open_checked_image(image.read_bytes(), max_pixels=settings.limits.max_upload_pixels)
        images = local.services.images
        planned = images.plan(
            owner_id=local.owner_id(api_key),
            options=options,
            init_image=init_image,
            strength=strength if image is not None else None,
        )
        recorded = images.record(planned, images.run_sync(planned))
        return [(image.content, image.row.seed, image.row.generation_time_s) for image in recorded]
