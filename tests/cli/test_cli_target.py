"""The CLI's one rule: the server when one answers (named, or at the settings' default URL), else the home
in-process; with neither, one message naming the home and what to run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Keys, LiveServer, LoraFiles, free_port, image_bytes
from tests.helpers import make_zip, run_cli


def test_nothing_to_work_on_says_what_to_run(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    for args in (("generate", "a cat", "-o", str(tmp_path / "x.png")), ("datasets", "list"), ("classify", "a cat")):
        result = run_cli(home, *args, check=False)
        assert result.returncode == 1, result.stdout
        for words in (str(home), "make serve", "models build-tiny", "--server", "--local", "http://127.0.0.1:1"):
            assert words in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr
    assert not home.exists()  # nothing was created while looking
    assert not (tmp_path / "x.png").exists()


def test_a_named_server_must_answer(tmp_path: Path, live: LiveServer) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    for env in ({"GENFOUNDRY_SERVER": nowhere}, {}):
        args = ("datasets", "list") if env else ("datasets", "list", "--server", nowhere)
        result = run_cli(live.settings.home, *args, check=False, env=env)
        assert result.returncode == 1
        assert "no genfoundry server answers at " + nowhere in " ".join(result.stderr.split())
        assert "--local" in result.stderr


def test_datasets_and_imports_go_to_the_server(
    tmp_path: Path, live: LiveServer, keys: Keys, lora_files: LoraFiles
) -> None:
    """The session server's default URL (GENFOUNDRY_PORT), no --server: each user's own datasets, over HTTP."""
    env = {"GENFOUNDRY_PORT": str(live.settings.port), "GENFOUNDRY_API_KEY": keys.alice}
    elsewhere = tmp_path / "cli-home"  # the CLI's own home stays untouched: the work is the server's
    archive = tmp_path / "data.zip"
    archive.write_bytes(make_zip({"a.png": image_bytes((200, 10, 10)), "b.jpg": b"not an image"}))
    created = run_cli(elsewhere, "datasets", "create", "boots", "--zip", str(archive), "--trigger-word", "sks", env=env)
    summary = json.loads(created.stdout)
    assert (summary["name"], summary["stats"]["accepted"]) == ("boots", 1)
    assert "rejected  b.jpg" in created.stderr
    dataset_id = summary["id"]
    assert dataset_id in run_cli(elsewhere, "datasets", "list", env=env).stdout
    assert json.loads(run_cli(elsewhere, "datasets", "show", dataset_id, env=env).stdout) == summary
    config = run_cli(elsewhere, "datasets", "config", dataset_id, "--resolution", "512", env=env).stdout
    assert 'class_tokens = "sks"' in config and "resolution = 512" in config

    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    bad = run_cli(elsewhere, "datasets", "create", "text", "--jsonl", str(jsonl), check=False, env=env)
    assert bad.returncode == 1 and "line 2" in bad.stderr
    jsonl.write_text('{"prompt": "a", "completion": "b"}\n')
    text = json.loads(run_cli(elsewhere, "datasets", "create", "pairs", "--jsonl", str(jsonl), env=env).stdout)
    assert (text["name"], text["kind"], text["stats"]["examples"]) == ("pairs", "text", 1)

    imported = run_cli(
        elsewhere, "models", "import", str(lora_files.sd15_a), "--base", "tiny-sd15", "--name", "x", env=env
    )
    adapter_id = json.loads(imported.stdout)["id"]
    with live.client(keys.alice) as alice:
        assert alice.get(f"/v1/models/{adapter_id}").status_code == 200

    as_bob = {**env, "GENFOUNDRY_API_KEY": keys.bob}
    assert dataset_id not in run_cli(elsewhere, "datasets", "list", env=as_bob).stdout
    missing = run_cli(elsewhere, "datasets", "show", dataset_id, check=False, env=as_bob)
    assert missing.returncode == 1 and "404" in missing.stderr
    denied = run_cli(elsewhere, "datasets", "list", check=False, env={**env, "GENFOUNDRY_API_KEY": "gf-wrong"})
    assert denied.returncode == 1 and "401" in denied.stderr
    assert not elsewhere.exists()
