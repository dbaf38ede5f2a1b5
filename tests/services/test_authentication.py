"""Authenticating a request: one read per request, so what another process does to a key (the CLI on the same home,
another replica on the same database) counts on the very next request, and one key never answers for another."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from genfoundry.db.session import make_engine, make_session_factory, upgrade_database
from genfoundry.db.tables import ApiKey, User, utcnow
from genfoundry.errors import Unauthorized
from genfoundry.repo import users as users_repo
from genfoundry.services.authentication import LOCAL_PRINCIPAL, Authenticator, Principal


@dataclass
class Home:
    """A database file, the server's authenticator on it, and `other`: sessions of a second engine on the same file,
    as the CLI or another process would open it."""

    authenticator: Authenticator
    other: sessionmaker[Session]

    def new_key(self, name: str, *, is_admin: bool = False) -> users_repo.NewKey:
        with self.other() as session:
            made = users_repo.create_key(session=session, name=name, is_admin=is_admin)
            session.commit()
            return made

    def revoke(self, key_id: str) -> None:
        with self.other() as session:
            users_repo.revoke_key(session=session, key_id=key_id)
            session.commit()


@contextmanager
def authenticator_on(path: Path, host: str) -> Iterator[Authenticator]:
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    try:
        yield Authenticator(engine=engine, sessions=make_session_factory(engine), host=host)
    finally:
        engine.dispose()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    path = tmp_path / "genfoundry.db"
    with authenticator_on(path, "127.0.0.1") as authenticator:
        other = make_engine(f"sqlite:///{path}")
        yield Home(authenticator, make_session_factory(other))
        other.dispose()


def test_a_key_is_its_users_principal(home: Home) -> None:
    carol, root = home.new_key("carol"), home.new_key("root", is_admin=True)
    assert home.authenticator.authenticate(carol.key) == Principal(user_id=carol.record.user_id, is_admin=False)
    assert home.authenticator.authenticate(root.key) == Principal(user_id=root.record.user_id, is_admin=True)


def test_a_key_revoked_by_another_process_is_refused_on_the_next_request(home: Home) -> None:
    carol = home.new_key("carol")
    for _ in range(3):  # used several times first: nothing about it may be remembered past its revocation
        home.authenticator.authenticate(carol.key)
    home.revoke(carol.record.id)
    with pytest.raises(Unauthorized, match="invalid or revoked"):
        home.authenticator.authenticate(carol.key)


def test_a_deleted_key_or_user_is_refused_on_the_next_request(home: Home) -> None:
    carol, dave = home.new_key("carol"), home.new_key("dave")
    home.authenticator.authenticate(carol.key)
    home.authenticator.authenticate(dave.key)
    with home.other() as session:
        session.execute(delete(ApiKey).where(ApiKey.id == carol.record.id))
        session.execute(delete(User).where(User.id == dave.record.user_id))  # its keys go with it (cascade)
        session.commit()
    for key in (carol.key, dave.key):
        with pytest.raises(Unauthorized):
            home.authenticator.authenticate(key)


def test_an_admin_demoted_elsewhere_is_no_admin_on_the_next_request(home: Home) -> None:
    root = home.new_key("root", is_admin=True)
    assert home.authenticator.authenticate(root.key).is_admin
    with home.other() as session:
        session.execute(update(User).where(User.id == root.record.user_id).values(is_admin=False))
        session.commit()
    assert not home.authenticator.authenticate(root.key).is_admin


def test_one_key_never_answers_for_another(home: Home) -> None:
    carol, dave = home.new_key("carol"), home.new_key("dave")
    assert home.authenticator.authenticate(carol.key).user_id == carol.record.user_id
    assert home.authenticator.authenticate(dave.key).user_id == dave.record.user_id
    home.revoke(dave.record.id)
    assert home.authenticator.authenticate(carol.key).user_id == carol.record.user_id  # untouched by dave's
    for wrong in (dave.key, carol.key + "x", carol.key[:-1], carol.key.upper(), carol.record.key_hash):
        with pytest.raises(Unauthorized):
            home.authenticator.authenticate(wrong)


@pytest.mark.parametrize("hostile", ["", " ", "gf-" + "a" * 100_000, "gf-é\u202e", "' OR 1=1 --", "\x00", "\udc80"])
def test_hostile_keys_are_refused_and_change_nothing(home: Home, hostile: str) -> None:
    carol = home.new_key("carol")
    with pytest.raises(Unauthorized):
        home.authenticator.authenticate(hostile)
    with home.other() as session:
        assert users_repo.count_active_keys(session=session) == 1
    assert home.authenticator.authenticate(carol.key).user_id == carol.record.user_id


def test_last_used_is_written_once_a_minute_at_most(home: Home) -> None:
    carol = home.new_key("carol")

    def last_used() -> object:
        with home.other() as session:
            return session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == carol.record.id))

    home.authenticator.authenticate(carol.key)
    first = last_used()
    assert first is not None
    home.authenticator.authenticate(carol.key)
    assert last_used() == first
    with home.other() as session:  # as if that use were two minutes ago
        session.execute(
            update(ApiKey).where(ApiKey.id == carol.record.id).values(last_used_at=utcnow() - timedelta(minutes=2))
        )
        session.commit()
    home.authenticator.authenticate(carol.key)
    assert last_used() != first


def test_single_user_mode_ends_when_another_process_creates_a_key(home: Home) -> None:
    assert home.authenticator.authenticate(None) == LOCAL_PRINCIPAL
    assert home.authenticator.authenticate("gf-anything") == LOCAL_PRINCIPAL  # no keys: any caller is the local user
    carol = home.new_key("carol")
    with pytest.raises(Unauthorized, match="missing API key"):
        home.authenticator.authenticate(None)
    home.revoke(carol.record.id)  # a home whose keys are all revoked stays in key mode
    with pytest.raises(Unauthorized, match="missing API key"):
        home.authenticator.authenticate(None)


def test_no_single_user_mode_off_loopback(tmp_path: Path) -> None:
    with (
        authenticator_on(tmp_path / "genfoundry.db", "0.0.0.0") as authenticator,
        pytest.raises(Unauthorized, match="missing API key"),
    ):
        authenticator.authenticate(None)
