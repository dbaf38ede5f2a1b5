"""Who a request is: the user of its API key, or the local user in single-user mode (no keys, loopback only).

Per request this is one indexed read: the key's row (by its SHA-256) joined to its user, where the key is not
revoked. Nothing about a key is remembered between requests, because a key revoked by another process — the CLI on
the same home, another replica on the same PostgreSQL — must be refused on the very next request, and asking the
database is the only thing every such process shares; the read replaces four statements and a commit (a count, two
ORM loads, the commit). Remembered, because they only ever go one way: that keys exist (the app never deletes a
key; a home whose keys were deleted by hand stays in key mode, which refuses rather than lets in) and that the local
user's row exists. `last_used_at` is written only when it is older than a minute.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.tables import utcnow
from genfoundry.errors import Unauthorized
from genfoundry.repo import users as users_repo


@dataclass(frozen=True)
class Principal:
    user_id: str
    is_admin: bool


LOCAL_PRINCIPAL = Principal(user_id=users_repo.LOCAL_USER_ID, is_admin=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Authenticator:
    """`authenticate(key)` for one server process listening on `host` (single-user mode needs a loopback host)."""

    def __init__(self, *, engine: Engine, sessions: sessionmaker[Session], host: str) -> None:
        self.engine = engine  # the per-request read skips the ORM: a Session costs more than the read
        self.sessions = sessions
        self.single_user_allowed = is_loopback(host)
        self._keys_exist = False
        self._local_user_exists = False

    def authenticate(self, key: str | None) -> Principal:
        """The caller's principal; `Unauthorized` for a missing, unknown or revoked key (blocking: a worker thread)."""
        with self.engine.connect() as connection:
            if self._single_user(connection):
                return LOCAL_PRINCIPAL
            if key is None:
                raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
            found = users_repo.find_active_key(connection=connection, key_hash=users_repo.hash_key(key))
            if found is None:
                raise Unauthorized("invalid or revoked API key")
            now = utcnow()
            if users_repo.is_stale(found.last_used_at, now):
                users_repo.mark_key_used(connection=connection, key_id=found.key_id, now=now)
                connection.commit()
            return Principal(user_id=found.user_id, is_admin=found.is_admin)

    def _single_user(self, connection: Connection) -> bool:
        """Whether this request runs as the local user (no key exists, loopback only); creates that user once."""
        if self._keys_exist or not self.single_user_allowed:
            return False
        if users_repo.any_keys(connection=connection):
            self._keys_exist = True
            return False
        if not self._local_user_exists:
            with self.sessions() as session:
                try:
                    users_repo.get_or_create_local_user(session=session)
                    session.commit()
                except IntegrityError:  # a concurrent first request created the local user a moment ago
                    session.rollback()
            self._local_user_exists = True
        return True
