"""The first key on a home where single-user mode left data owns that data; no other key ever takes it.

The commands run through Typer in this process (each a subprocess would cost seconds of imports).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from genfoundry.cli import app
from genfoundry.config import Settings
from genfoundry.db.tables import User
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database


def run_cli(home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
    """`genfoundry *args` on `home`, no server answering (port 1); exit 0 unless check=False."""
    full_env = {"GENFOUNDRY_HOME": str(home), "GENFOUNDRY_PORT": "1", "GENFOUNDRY_API_KEY": "", **(env or {})}
    result = CliRunner().invoke(app, list(args), env=full_env)
    if check:
        assert result.exit_code == 0, result.output
    return result


def _new_key(home: Path, name: str, *args: str) -> tuple[str, str]:
    """(the key, what `keys create` said on stderr)."""
    created = run_cli(home, "keys", "create", "--name", name, *args)
    return created.stdout.strip(), created.stderr


def _key_id(said: str) -> str:
    return said.split("key id ")[1].split()[0]


def _sees(home: Path, key: str, dataset_id: str) -> bool:
    """Whether the key's user gets the dataset (another user's is not found)."""
    shown = run_cli(home, "datasets", "show", dataset_id, "--local", check=False, env={"GENFOUNDRY_API_KEY": key})
    assert shown.exit_code in (0, 1), shown.output
    return shown.exit_code == 0


def _single_user_dataset(home: Path, tmp_path: Path) -> str:
    """A text dataset made without a key, as single-user mode makes them (owned by the local user)."""
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"prompt": "a", "completion": "b"}\n')
    created = run_cli(home, "datasets", "create", "mine", "--jsonl", str(jsonl), "--local")
    dataset_id: str = json.loads(created.stdout)["id"]
    return dataset_id


def test_first_key_owns_single_user_data_and_later_keys_do_not(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dataset_id = _single_user_dataset(home, tmp_path)

    alice, said = _new_key(home, "alice")
    alice_id = _key_id(said)
    assert "the first key owns what single-user mode made: 1 datasets" in said
    assert f"for user {users_repo.LOCAL_USER_ID}" in said
    assert _sees(home, alice, dataset_id)

    # A second key is a new user: nothing is adopted again, and it sees none of alice's data.
    bob, said = _new_key(home, "bob")
    bob_id = _key_id(said)
    assert "single-user mode" not in said
    assert not _sees(home, bob, dataset_id)
    assert _sees(home, alice, dataset_id)

    # Even with every key revoked, a new key never takes the data over.
    for key_id in (alice_id, bob_id):
        run_cli(home, "keys", "revoke", key_id)
    carol, said = _new_key(home, "carol")
    assert "single-user mode" not in said
    assert not _sees(home, carol, dataset_id)
    with open_database(Settings(home=home)) as session:
        local = session.get(User, users_repo.LOCAL_USER_ID)
        assert local is not None
        assert (local.name, local.is_admin) == ("alice", False)  # the adopted user took the first key's name and rights


def test_first_key_for_a_named_user_adopts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dataset_id = _single_user_dataset(home, tmp_path)
    with open_database(Settings(home=home)) as session:
        other = users_repo.create_user(session=session, name="dora")
        session.commit()
    dora, said = _new_key(home, "dora", "--user", other.id)
    assert "single-user mode" not in said
    assert not _sees(home, dora, dataset_id)
    failed = run_cli(home, "keys", "create", "--name", "x", "--user", "user_nope", check=False)
    assert failed.exit_code == 1 and "user_nope" in failed.stderr


def test_first_key_on_a_home_without_local_data_is_a_new_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _key, said = _new_key(home, "erin", "--admin")
    assert "single-user mode" not in said
    assert users_repo.LOCAL_USER_ID not in said
    with open_database(Settings(home=home)) as session:
        assert session.get(User, users_repo.LOCAL_USER_ID) is None


def test_first_key_over_the_api_adopts_too(tmp_path: Path) -> None:
    """POST /v1/keys (an admin, or single-user mode's own user) creates keys through the same service."""
    from genfoundry.db.session import make_engine, make_session_factory
    from genfoundry.services import keys as keys_service

    home = tmp_path / "home"
    dataset_id = _single_user_dataset(home, tmp_path)
    engine = make_engine(Settings(home=home).resolved_database_url)
    try:
        sessions = make_session_factory(engine)
        first = keys_service.create_key(sessions=sessions, name="fay", is_admin=True, user_id=None)
        second = keys_service.create_key(sessions=sessions, name="gus", is_admin=False, user_id=None)
    finally:
        engine.dispose()
    assert (first.user.id, first.user.name, first.adopted) == (users_repo.LOCAL_USER_ID, "fay", {"datasets": 1})
    assert second.user.id != users_repo.LOCAL_USER_ID and second.adopted == {}
    assert _sees(home, first.key, dataset_id)
