"""Key management over HTTP: admins only; a key is shown once; revocation takes effect at once."""

from __future__ import annotations

import httpx

from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error


def test_keys_need_an_admin(alice: httpx.Client) -> None:
    assert_error(alice.get("/v1/keys"), 403)
    assert_error(alice.post("/v1/keys", json={"name": "x"}), 403)
    assert_error(alice.post("/v1/keys/key_x/revoke"), 403)


def test_admin_creates_lists_and_revokes(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.admin) as admin:
        created = admin.post("/v1/keys", json={"name": "dave"})
        assert created.status_code == 201, created.text
        new = created.json()
        assert new["key"].startswith("gf-")
        assert new["admin"] is False
        listed = admin.get("/v1/keys").json()["data"]
        assert new["id"] in [key["id"] for key in listed]
        assert all("key" not in key and "key_hash" not in key for key in listed)
        assert {key["name"] for key in listed} >= {"alice", "bob", "mallory", "root", "dave"}

        with live.client(new["key"]) as dave:
            assert dave.get("/v1/models").status_code == 200
            assert_error(dave.get("/v1/keys"), 403)
            revoked = admin.post(f"/v1/keys/{new['id']}/revoke")
            assert revoked.status_code == 200
            assert revoked.json()["revoked"] is not None
            assert_error(dave.get("/v1/models"), 401)

        second = admin.post("/v1/keys", json={"name": "dave again", "user_id": new["user_id"]}).json()
        assert second["user_id"] == new["user_id"]
        assert_error(admin.post("/v1/keys", json={"name": "x", "user_id": "user_nope"}), 404)
        assert_error(admin.post("/v1/keys", json={"name": ""}), 400, param="name")
        assert_error(admin.post("/v1/keys", json={"name": "x", "role": "god"}), 400, param="role")
        assert_error(admin.post("/v1/keys/key_nope/revoke"), 404)
