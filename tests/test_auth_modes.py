"""Single-user mode on loopback without keys; refusing to serve keyless on other addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from genfoundry.app import UnsafeBindError, check_auth_mode
from genfoundry.config import Settings
from genfoundry.services import build_services
from tests.conftest import free_port, make_home, start_server


def test_single_user_mode_needs_no_key(tmp_path: Path, tiny_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(home=make_home(tmp_path, tiny_dir), port=free_port())
    with caplog.at_level("WARNING", logger="genfoundry"):
        server = start_server(settings)
    try:
        assert any("single-user mode" in record.message for record in caplog.records)
        with server.client() as client:
            response = client.post(
                "/v1/images/generations",
                json={"model": "tiny-sd15", "prompt": "x", "size": "64x64", "steps": 2},
            )
            assert response.status_code == 200, response.text
            assert client.get("/v1/generations").json()["data"][0]["id"] == response.json()["data"][0]["id"]
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_refuses_keyless_non_loopback(tmp_path: Path, host: str) -> None:
    services = build_services(Settings(home=tmp_path / "home", host=host))
    try:
        with pytest.raises(UnsafeBindError, match="keys create"):
            check_auth_mode(services)
    finally:
        services.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_hosts_allow_single_user(tmp_path: Path, host: str) -> None:
    services = build_services(Settings(home=tmp_path / "home", host=host))
    try:
        assert check_auth_mode(services) == "single-user"
    finally:
        services.close()
