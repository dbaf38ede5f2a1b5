"""API keys for admins: create one (for a new user or an existing one), list them with their users, revoke one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import ApiKey, User
from genfoundry.repo import users as users_repo


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKey
    user: User
    key: str  # the secret: in this answer only
    adopted: dict[str, int]  # the single-user data the first key's user took over (users_repo.create_key)


def list_keys(*, sessions: sessionmaker[Session]) -> list[tuple[ApiKey, User]]:
    with sessions() as session:
        return users_repo.list_keys(session=session)


def create_key(*, sessions: sessionmaker[Session], name: str, is_admin: bool, user_id: str | None) -> CreatedKey:
    """A key for a new user named `name`, or for the existing `user_id`; the first key adopts single-user data."""
    with sessions() as session:
        new = users_repo.create_key(session=session, name=name, is_admin=is_admin, user_id=user_id, adopt_local=True)
        session.commit()
        user = _user(session, new.record.user_id)
        return CreatedKey(record=new.record, user=user, key=new.key, adopted=new.adopted)


def revoke_key(*, sessions: sessionmaker[Session], key_id: str) -> tuple[ApiKey, User]:
    with sessions() as session:
        key = users_repo.revoke_key(session=session, key_id=key_id)
        session.commit()
        return key, _user(session, key.user_id)


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    assert user is not None
    return user
