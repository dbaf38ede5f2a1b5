"""The CLI as users run it: a subprocess with GENFOUNDRY_HOME set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import LiveServer, LoraFiles, make_home
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    return make_home(tmp_path_factory.mktemp("cli"), tiny_dir)


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from genfoundry.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'serve' in r.output and 'generate' in r.output; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_keys_create_list_revoke(home: Path) -> None:
    created = run_cli(home, "keys", "create", "--name", "carol", "--admin")
    key = created.stdout.strip()
    assert key.startswith("gf-")
    listed = run_cli(home, "keys", "list").stdout
    assert "carol" in listed
    assert key not in listed
    key_id = created.stderr.split("key id ")[1].split()[0]
    run_cli(home, "keys", "revoke", key_id)
    assert "revoked" not in run_cli(home, "keys", "revoke", "key_nope", check=False).stdout
    assert run_cli(home, "keys", "revoke", "key_nope", check=False).returncode == 1


def test_models_build_tiny_and_list(tmp_path: Path, home: Path) -> None:
    listed = run_cli(home, "models", "list").stdout
    for model_id in ("tiny-sd15", "tiny-sdxl", "tiny-flux", "flux.1-dev", "tiny-llm", "router-default"):
        assert model_id in listed
    rows = [json.loads(line) for line in run_cli(home, "models", "list", "--json").stdout.splitlines()]
    by_id = {row["id"]: row for row in rows}
    assert by_id["tiny-sd15"]["kind"] == "base" and by_id["tiny-sd15"]["family"] == "sd15"
    assert by_id["tiny-llm"]["family"] == "text"
    assert by_id["router-default"]["kind"] == "classifier"
    assert set(by_id["router-default"]["labels"]) == {"image", "diagram", "chat"}
    rebuilt = run_cli(home, "models", "build-tiny").stdout
    assert "tiny-sd15: already built" in rebuilt


def test_generate_in_process_with_lora_and_style(tmp_path: Path, home: Path, lora_files: LoraFiles) -> None:
    imported = run_cli(
        home,
        "models",
        "import",
        str(lora_files.sd15_a),
        "--base",
        "tiny-sd15",
        "--name",
        "cli lora",
        "--trigger-word",
        "zzt",
    )
    adapter_id = json.loads(imported.stdout)["id"]
    assert adapter_id in run_cli(home, "models", "list").stdout
    out, again = tmp_path / "out.png", tmp_path / "again.png"
    args = ["generate", "a cat", "--model", "tiny-sd15", "--lora", f"{adapter_id}:0.8", "--style", "product"]
    args += ["--size", "64x64", "--steps", "2", "--seed", "3"]
    result = run_cli(home, *args, "-o", str(out))
    assert "seed=3" in result.stdout
    assert Image.open(out).size == (64, 64)
    run_cli(home, *args, "-o", str(again))
    assert Image.open(out).tobytes() == Image.open(again).tobytes()

    edited = tmp_path / "edited.png"
    run_cli(
        home,
        "generate",
        "a cat",
        "--image",
        str(out),
        "--strength",
        "0.5",
        "--steps",
        "4",
        "-n",
        "2",
        "--size",
        "64x64",
        "-o",
        str(edited),
    )
    assert Image.open(tmp_path / "edited-1.png").size == (64, 64)
    assert Image.open(tmp_path / "edited-2.png").size == (64, 64)

    bad = run_cli(home, "generate", "a cat", "--model", "no-such", "-o", str(tmp_path / "x.png"), check=False)
    assert bad.returncode == 1
    assert "no-such" in bad.stderr
    assert not (tmp_path / "x.png").exists()


def test_generate_against_server(tmp_path: Path, live: LiveServer, keys) -> None:
    out = tmp_path / "remote.png"
    result = run_cli(
        live.settings.home,
        "generate",
        "a boat",
        "--model",
        "tiny-sdxl",
        "--size",
        "64x64",
        "--steps",
        "2",
        "--seed",
        "8",
        "--server",
        live.url,
        "-o",
        str(out),
        env={"GENFOUNDRY_API_KEY": keys.alice},
    )
    assert "seed=8" in result.stdout
    assert Image.open(out).size == (64, 64)
    denied = run_cli(
        live.settings.home,
        "generate",
        "a boat",
        "--server",
        live.url,
        "-o",
        str(tmp_path / "d.png"),
        check=False,
        env={"GENFOUNDRY_API_KEY": "gf-wrong"},
    )
    assert denied.returncode == 1
    assert "401" in denied.stderr


def test_serve_refuses_keyless_public_bind(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "home", "serve", "--host", "0.0.0.0", "--port", "1", check=False)
    assert result.returncode == 1
    assert "keys create" in result.stderr


def test_datasets_commands(tmp_path: Path, home: Path, image_server: str) -> None:
    from tests.conftest import image_bytes
    from tests.helpers import make_zip

    archive = tmp_path / "data.zip"
    archive.write_bytes(make_zip({"a.png": image_bytes((200, 10, 10)), "b.jpg": b"not an image"}))
    created = run_cli(home, "datasets", "create", "shoes", "--zip", str(archive), "--trigger-word", "sks")
    summary = json.loads(created.stdout)
    assert summary["stats"]["accepted"] == 1
    assert "rejected  b.jpg" in created.stderr
    dataset_id = summary["id"]
    assert dataset_id in run_cli(home, "datasets", "list").stdout
    assert json.loads(run_cli(home, "datasets", "show", dataset_id).stdout)["name"] == "shoes"

    captioned = run_cli(home, "datasets", "caption", dataset_id, "--model", "tiny-captioner")
    assert json.loads(captioned.stdout)["stats"]["caption_coverage"] == 1.0
    config = run_cli(home, "datasets", "config", dataset_id, "--resolution", "512")
    assert 'class_tokens = "sks"' in config.stdout
    assert "resolution = 512" in config.stdout

    url_list = tmp_path / "urls.txt"
    url_list.write_text(f"{image_server}/red.png\n\nhttp://127.0.0.1:9/x.png\n")
    env = {"GENFOUNDRY_DATASETS__ALLOWED_FETCH_NETWORKS": '["127.0.0.2/32"]'}
    from_urls = json.loads(run_cli(home, "datasets", "create", "web", "--urls", str(url_list), env=env).stdout)
    assert (from_urls["status"], from_urls["stats"]["accepted"], from_urls["stats"]["rejected"]) == ("ready", 1, 1)

    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    bad = run_cli(home, "datasets", "create", "text", "--jsonl", str(jsonl), check=False)
    assert bad.returncode == 1
    assert "line 2" in bad.stderr
    assert run_cli(home, "datasets", "show", "ds_nope", check=False).returncode == 1
