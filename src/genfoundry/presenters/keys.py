"""API keys as admins see them: never the key itself, except once in the answer that creates it."""

from __future__ import annotations

from genfoundry.db.tables import ApiKey, User
from genfoundry.schemas import ApiKeyCreated, ApiKeyPublic


def key_public(key: ApiKey, user: User) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_id=user.id,
        admin=user.is_admin,
        created=int(key.created_at.timestamp()),
        last_used=int(key.last_used_at.timestamp()) if key.last_used_at else None,
        revoked=int(key.revoked_at.timestamp()) if key.revoked_at else None,
    )


def key_created(key: ApiKey, user: User, secret: str) -> ApiKeyCreated:
    """The new key with its secret, shown this once (only its hash is stored)."""
    return ApiKeyCreated(**key_public(key, user).model_dump(), key=secret)
