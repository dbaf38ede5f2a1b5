"""Users and API keys. Keys are shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from genfoundry.db.tables import (
    Adapter,
    ApiKey,
    Batch,
    Classifier,
    Conversation,
    Dataset,
    Generation,
    Job,
    User,
    utcnow,
)
from genfoundry.errors import NotFound
from genfoundry.repo.ids import new_id

KEY_PREFIX = "gf-"
LAST_USED_RESOLUTION = timedelta(minutes=1)
LOCAL_USER_ID = "user_local"
# The owner column of each resource a user owns, by the name `local_data` reports it under.
OWNER_COLUMNS = {
    "datasets": Dataset.owner_id,
    "adapters": Adapter.owner_id,
    "jobs": Job.owner_id,
    "generations": Generation.owner_id,
    "classifiers": Classifier.owner_id,
    "conversations": Conversation.owner_id,
    "batches": Batch.owner_id,
}


def hash_key(key: str) -> str:
    # surrogatepass: a key from argv with undecodable bytes hashes (to nothing stored) instead of raising
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: str
    record: ApiKey
    adopted: dict[str, int] = field(default_factory=dict)  # the single-user data the key's user took over


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


def local_data(*, session: Session) -> dict[str, int]:
    """How many of each resource the single-user mode's local user owns (only the kinds it has)."""
    counts = {
        name: session.scalar(select(func.count()).where(column == LOCAL_USER_ID)) or 0
        for name, column in OWNER_COLUMNS.items()
    }
    return {name: count for name, count in counts.items() if count}


def create_key(
    *, session: Session, name: str, is_admin: bool = False, user_id: str | None = None, adopt_local: bool = False
) -> NewKey:
    """A key for an existing user, or for a new user named `name`; the plain key is returned once.

    With `adopt_local`, the first key ever made on a home where single-user mode left data (and no `user_id`) goes
    to that local user, renamed `name`, so the data stays its key's; any later key makes a new user as usual.
    """
    adopted: dict[str, int] = {}
    if user_id is None and adopt_local and count_keys(session=session) == 0:
        adopted = local_data(session=session)
    if adopted:
        user = _existing_user(session, LOCAL_USER_ID)
        user.name, user.is_admin = name, is_admin
    elif user_id is None:
        user = create_user(session=session, name=name, is_admin=is_admin)
    else:
        user = _existing_user(session, user_id)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(id=new_id("key"), user_id=user.id, name=name, prefix=plain[:10], key_hash=hash_key(plain))
    session.add(record)
    session.flush()
    return NewKey(key=plain, record=record, adopted=adopted)


def _existing_user(session: Session, user_id: str) -> User:
    found = session.get(User, user_id)
    if found is None:
        raise NotFound(f"no user with id {user_id}")
    return found


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
    if is_stale(record.last_used_at, now):  # throttled so that authenticating is not a write on every request
        record.last_used_at = now
    return session.get(User, record.user_id)


@dataclass(frozen=True)
class ActiveKey:
    """What authenticating a request needs of an active key and its user, read in one statement."""

    key_id: str
    user_id: str
    is_admin: bool
    last_used_at: datetime | None


# Built once: every request runs these, and building a statement costs more than SQLite takes to run it.
_ANY_KEY = select(exists().select_from(ApiKey))
_ACTIVE_KEY = (
    select(ApiKey.id, ApiKey.user_id, User.is_admin, ApiKey.last_used_at)
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)


def any_keys(*, connection: Connection) -> bool:
    """Whether a key (active or revoked) exists: an index probe, not a count."""
    return bool(connection.scalar(_ANY_KEY))


def find_active_key(*, connection: Connection, key_hash: str) -> ActiveKey | None:
    """The active key with this hash and its user, or None (no such key, revoked, or its user deleted)."""
    row = connection.execute(_ACTIVE_KEY, {"key_hash": key_hash}).one_or_none()
    return None if row is None else ActiveKey(*row.tuple())


def is_stale(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a key's last use is older than `LAST_USED_RESOLUTION` (so is worth writing again)."""
    if last_used_at is None:
        return True
    aware = last_used_at if last_used_at.tzinfo else last_used_at.replace(tzinfo=UTC)
    return now - aware > LAST_USED_RESOLUTION


def mark_key_used(*, connection: Connection, key_id: str, now: datetime) -> None:
    connection.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
