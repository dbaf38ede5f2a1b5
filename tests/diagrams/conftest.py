"""One PlantUML renderer (one JVM) shared by the diagram tests that need a running PlantUML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from genfoundry.config import DiagramSettings
from genfoundry.diagrams.renderer import LocalRenderer


@pytest.fixture(scope="session")
def plantuml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRenderer]:
    renderer = LocalRenderer(DiagramSettings(), work_dir=Path(tmp_path_factory.mktemp("plantuml")))
    yield renderer
    renderer.close()
