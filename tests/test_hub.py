"""The Hub helpers: one quick probe that tells an answering endpoint from a silent one, and usage reports off by
default without overriding what the user set."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from genfoundry.hub import fetch_command, hub_answers, hub_endpoint
from tests.conftest import free_port


class AnyAnswer(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(404)  # any status is an answer
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_hub_answers_tells_a_listening_endpoint_from_a_closed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}/")
    assert hub_endpoint().startswith("http://127.0.0.1:") and not hub_endpoint().endswith("/")
    assert hub_answers() is False
    monkeypatch.setenv("HF_ENDPOINT", "not a url")
    assert hub_answers() is False
    server = ThreadingHTTPServer(("127.0.0.1", 0), AnyAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert hub_answers() is True
    finally:
        server.shutdown()
    assert fetch_command("org/model") == "hf download org/model"


@pytest.mark.parametrize(("given", "expected"), [(None, "1 True"), ("0", "0 False")])
def test_usage_reports_are_off_unless_the_user_says_otherwise(given: str | None, expected: str) -> None:
    code = (
        "import os; from huggingface_hub import constants; from genfoundry.hub import use_hub_defaults\n"
        "use_hub_defaults(); print(os.environ['HF_HUB_DISABLE_TELEMETRY'], constants.HF_HUB_DISABLE_TELEMETRY)"
    )
    env = {"PATH": "/usr/bin:/bin", **({"HF_HUB_DISABLE_TELEMETRY": given} if given is not None else {})}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
