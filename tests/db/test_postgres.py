"""genfoundry on a real PostgreSQL server (started here in a temp folder): migrations, keys, generations."""

from __future__ import annotations

from pathlib import Path

from genfoundry.config import Settings
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from tests.conftest import free_port, make_home, start_server


def test_service_runs_on_postgres(postgres_url: str, tmp_path: Path, tiny_dir: Path) -> None:
    settings = Settings(home=make_home(tmp_path, tiny_dir), port=free_port(), database_url=postgres_url)
    with open_database(settings) as session:
        key = users_repo.create_key(session=session, name="pg-user").key
        session.commit()
    assert not (settings.home / "genfoundry.db").exists()
    server = start_server(settings)
    try:
        with server.client(key) as client:
            made = client.post(
                "/v1/images/generations",
                json={"model": "tiny-sd15", "prompt": "a cat", "size": "64x64", "steps": 2, "n": 2, "seed": 4294967295},
            )
            assert made.status_code == 200, made.text
            ids = [item["id"] for item in made.json()["data"]]
            assert [item["seed"] for item in made.json()["data"]] == [4294967295, 0]
            patched = client.patch(f"/v1/generations/{ids[0]}", json={"favorite": True, "rating": 4})
            assert patched.status_code == 200
            favorites = client.get("/v1/generations", params={"favorite": True}).json()["data"]
            assert [item["id"] for item in favorites] == [ids[0]]
            assert client.get("/readyz").json()["status"] == "ready"
        with server.client() as anonymous:
            assert anonymous.get("/v1/generations").status_code == 401
    finally:
        server.stop()
    # Migrations are idempotent: a second start on the same database applies nothing new.
    with open_database(settings) as session:
        assert users_repo.count_keys(session=session) == 1
