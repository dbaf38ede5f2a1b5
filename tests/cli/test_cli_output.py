"""Output a person can use: ids are never cut in tables (whole when piped), every list prints JSON with --json
(also beside other flags), progress arrives as lines where no bar redraws, and -v turns the noise filters off."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from genfoundry.cli_output import ProgressLines, print_table
from tests.conftest import make_home
from tests.helpers import run_cli

LONG_ID = "ds_" + "0123456789abcdef" * 3


def table_with_a_long_id() -> Table:
    table = Table("id", "name", "owner")
    table.add_row(LONG_ID, "a name long enough to wrap " * 4, "user_" + "f" * 24)
    return table


def test_ids_are_whole_when_piped() -> None:
    out = io.StringIO()
    print_table(table_with_a_long_id(), console=Console(file=out, width=40))  # a pipe: not a terminal
    text = out.getvalue()
    assert LONG_ID in text and "user_" + "f" * 24 in text
    assert "a name long enough to wrap " * 3 in text  # nothing else wraps either
    assert "\x1b[" not in text  # no colour codes in a file


def test_ids_are_whole_on_a_narrow_terminal() -> None:
    out = io.StringIO()
    print_table(table_with_a_long_id(), console=Console(file=out, width=90, force_terminal=True))
    assert LONG_ID in out.getvalue()


def test_progress_lines_are_throttled_and_end_with_the_total() -> None:
    out = io.StringIO()
    lines = ProgressLines("training", every_s=3600, stream=out)
    for step in range(1, 11):
        lines.report(step, 10, f"loss {1 / step:.2f}")
    assert out.getvalue().splitlines() == ["training: 1/10  loss 1.00", "training: 10/10  loss 0.10"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    return make_home(tmp_path_factory.mktemp("cli-output"), tiny_dir)


def test_keys_and_datasets_list_as_json(home: Path) -> None:
    created = run_cli(home, "keys", "create", "--name", "dana")
    key_id = created.stderr.split("key id ")[1].split()[0]
    [key] = [json.loads(line) for line in run_cli(home, "keys", "list", "--json").stdout.splitlines()]
    assert key["id"] == key_id and key["name"] == "dana" and key["revoked"] is None
    assert created.stdout.strip() not in json.dumps(key)  # never the key itself
    assert run_cli(home, "datasets", "list", "--json", "--local").stdout == ""  # none yet: nothing, not a table
    missing = run_cli(home, "datasets", "list", "--json", "--server", "http://127.0.0.1:1", check=False)
    assert missing.returncode != 0 and missing.stdout == ""  # an error is no half-printed JSON


def test_verbose_leaves_library_noise_unfiltered() -> None:
    code = (
        "import logging, sys; from genfoundry.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(len(logging.getLogger('bitsandbytes.backends.cpu.ops').filters))"
    )

    def filters(*args: str) -> str:
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        return result.stdout.strip().splitlines()[-1]

    assert filters("keys", "--help") == "1"
    assert filters("-v", "keys", "--help") == "0"
