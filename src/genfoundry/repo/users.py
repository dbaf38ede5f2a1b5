"""Users and API keys. Keys are shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genfoundry.db.tables import ApiKey, User, utcnow
from genfoundry.errors import NotFound
from genfoundry.repo.ids import new_id

KEY_PREFIX = "gf-"
LAST_USED_RESOLUTION = timedelta(minutes=1)
LOCAL_USER_ID = "user_local"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: str
    record: ApiKey


def create_user(*, session: Session, name: str, is_admin: bool = False) -> User:
    user = User(id=new_id("user"), name=name, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def get_or_create_local_user(*, session: Session) -> User:
    """The owner of everything in single-user (no keys, loopback-only) mode."""
    user = session.get(User, LOCAL_USER_ID)
    if user is None:
        user = User(id=LOCAL_USER_ID, name="local", is_admin=True)
        session.add(user)
        session.flush()
    return user


def create_key(*, session: Session, name: str, is_admin: bool = False, user_id: str | None = None) -> NewKey:
    """A key for an existing user, or for a new user named `name`; the plain key is returned once."""
    if user_id is None:
        user = create_user(session=session, name=name, is_admin=is_admin)
    else:
        found = session.get(User, user_id)
        if found is None:
            raise NotFound(f"no user with id {user_id}")
        user = found
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(id=new_id("key"), user_id=user.id, name=name, prefix=plain[:10], key_hash=hash_key(plain))
    session.add(record)
    session.flush()
    return NewKey(key=plain, record=record)


def list_keys(*, session: Session) -> list[tuple[ApiKey, User]]:
    rows = session.execute(select(ApiKey, User).join(User).order_by(ApiKey.created_at))
    return [(key, user) for key, user in rows.tuples()]


def revoke_key(*, session: Session, key_id: str) -> ApiKey:
    record = session.get(ApiKey, key_id)
    if record is None:
        raise NotFound(f"no key with id {key_id}")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def count_active_keys(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))) or 0


def count_keys(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey)) or 0


def authenticate(*, session: Session, key: str) -> User | None:
    """The user owning an active key, or None."""
    record = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if record is None or record.revoked_at is not None:
        return None
    now = utcnow()
    # Throttled so that authenticating is not a database write on every request.
    last = record.last_used_at
    if last is None or (now - (last if last.tzinfo else last.replace(tzinfo=UTC))) > LAST_USED_RESOLUTION:
        record.last_used_at = now
    return session.get(User, record.user_id)
