"""`genfoundry classify` as users run it: in-process on a fresh home (--local), and against the running server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Keys, LiveServer
from tests.helpers import run_cli


def test_classify_in_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli(home, "classify", "draw a red fox in the snow", "what is a sequence diagram?", "--json", "--local")
    body = json.loads(result.stdout)
    assert body["model"] == "router-default"
    assert [(item["input"], item["label"]) for item in body["data"]] == [
        ("draw a red fox in the snow", "image"),
        ("what is a sequence diagram?", "chat"),
    ]
    for item in body["data"]:
        assert abs(sum(item["scores"].values()) - 1.0) < 1e-6

    plain = run_cli(home, "classify", "plantuml class diagram of a library system", "--local")
    first = plain.stdout.split()
    assert first[0] == "diagram"
    assert "image" in first and "chat" in first  # every label's score is printed


def test_classify_against_the_server(live: LiveServer, keys: Keys, tmp_path: Path) -> None:
    args = ("classify", "a poster for a jazz night", "--server", live.url, "--json")
    result = run_cli(tmp_path, *args, env={"GENFOUNDRY_API_KEY": keys.alice})
    assert json.loads(result.stdout)["data"][0]["label"] == "image"

    missing = run_cli(tmp_path, *args, "--model", "clf_nope", check=False, env={"GENFOUNDRY_API_KEY": keys.alice})
    assert missing.returncode == 1
    assert "404" in missing.stderr and "clf_nope" in missing.stderr
    empty = run_cli(
        tmp_path, "classify", "  ", "--server", live.url, check=False, env={"GENFOUNDRY_API_KEY": keys.alice}
    )
    assert empty.returncode == 1 and "400" in empty.stderr


def test_classify_bad_input_in_process(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "home", "classify", "   ", "--local", check=False)
    assert result.returncode == 1
    assert "empty" in result.stderr
    assert "Traceback" not in result.stderr
