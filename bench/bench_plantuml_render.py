"""PlantUML render latency: what the API pays, `POST /v1/diagrams/render` (PNG) through a real `genfoundry serve`,
warm, against the goal p50 ≤ 50 ms (exits 1 when missed); p95 next to it.

For context, one diagram of each of the 13 types in the shipped training pairs renders three more ways: through
the renderer's long-lived PlantUML process in this process (its raw fetch, and `render()`: screen, SVG check, PNG,
size checks), and through `java -jar plantuml.jar -pipe` started afresh for each render with the same JVM
options, environment (SANDBOX profile) and layout, plus the long-lived process's one-off start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import httpx

from bench.common import goal, goals_exit_code, report, running_server
from genfoundry.config import DiagramSettings
from genfoundry.diagrams.renderer import LocalRenderer
from genfoundry.diagrams.runtime import (
    LAYOUT_PRAGMA,
    find_java,
    find_plantuml_jar,
    jvm_options,
    plantuml_environment,
)


def one_of_each_type() -> list[str]:
    """The first completion of each diagram type (the shipped file interleaves the types)."""
    lines = (files("genfoundry") / "data" / "diagrams" / "plantuml_pairs.jsonl").read_text().splitlines()
    return [json.loads(line)["completion"] for line in lines[:13]]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fresh_jvm_render(source: str, *, java: Path, jar: Path, work: Path, settings: DiagramSettings) -> bytes:
    options = jvm_options(heap_mb=settings.java_heap_mb, user_home=work, temp_dir=work)
    command = [str(java), *options, "-jar", str(jar)]
    command += ["-pipe", "-tpng", LAYOUT_PRAGMA]
    env = plantuml_environment(limit_size_px=settings.max_side_px, home=work)
    done = subprocess.run(command, input=source.encode(), capture_output=True, env=env, cwd=work, check=True)
    return done.stdout


GOAL_MS = 50.0


def http_renders(diagrams: list[str], rounds: int) -> list[float]:
    """Seconds per `POST /v1/diagrams/render` through a fresh server, after one untimed render of each diagram."""
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="genfoundry-bench-plantuml-") as home:
        settings = {"GENFOUNDRY_ROUTER__PRELOAD": "false"}  # nothing else loading in the background
        with running_server(Path(home), **settings) as url, httpx.Client(base_url=url, timeout=60) as client:

            def render(source: str) -> None:
                response = client.post("/v1/diagrams/render", json={"plantuml": source, "format": "png"})
                response.raise_for_status()

            for source in diagrams:  # starts and warms the server's PlantUML process
                render(source)
            for _ in range(rounds):
                for source in diagrams:
                    began = time.perf_counter()
                    render(source)
                    samples.append(time.perf_counter() - began)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="renders of each diagram through HTTP and in process")
    parser.add_argument("--jvm-rounds", type=int, default=2, help="renders of each diagram with a fresh JVM")
    args = parser.parse_args()

    settings = DiagramSettings()
    diagrams = one_of_each_type()
    load_before = os.getloadavg()[0]
    api = http_renders(diagrams, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        renderer = LocalRenderer(settings, work_dir=work)
        try:
            started = time.perf_counter()
            running = renderer.process.running()  # JVM start plus the renderer's warm-up renders
            start_s = time.perf_counter() - started
            version = renderer._client.get(f"{running.url}/serverinfo", headers={"Connection": "close"}).json()
            long_lived: list[float] = []
            full: list[float] = []
            for _ in range(args.rounds):
                for source in diagrams:
                    began = time.perf_counter()
                    png = renderer._fetch(source, "png")
                    long_lived.append(time.perf_counter() - began)
                    assert png.content.startswith(b"\x89PNG")
                    began = time.perf_counter()
                    renderer.render(source, "png")  # what the API does: screen, SVG check, PNG, size checks
                    full.append(time.perf_counter() - began)
        finally:
            renderer.close()

        java, jar = find_java(settings.java), find_plantuml_jar(settings.plantuml_jar)
        per_render: list[float] = []
        for _ in range(args.jvm_rounds):
            for source in diagrams:
                began = time.perf_counter()
                png_bytes = fresh_jvm_render(source, java=java, jar=jar, work=work, settings=settings)
                per_render.append(time.perf_counter() - began)
                assert png_bytes.startswith(b"\x89PNG")

    java_version = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    ms = 1000
    p50_long, p95_long = statistics.median(long_lived), percentile(long_lived, 0.95)
    p50_jvm, p95_jvm = statistics.median(per_render), percentile(per_render, 0.95)
    p50_api = statistics.median(api)
    target = goal(
        "POST /v1/diagrams/render through HTTP, warm, p50", p50_api * ms, "<=", GOAL_MS, unit=" ms", fmt=".0f"
    )
    report(
        f"PlantUML {version.get('version', '?')} render latency, PNG, {len(diagrams)} diagram types, {java_version}",
        [
            ("load average (1 min) before / after", f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"),
            (
                "POST /v1/diagrams/render through HTTP p50 / p95",
                f"{p50_api * ms:.0f} ms / {percentile(api, 0.95) * ms:.0f} ms  ({len(api)} renders)",
            ),
            target,
            (
                "long-lived process p50 / p95",
                f"{p50_long * ms:.0f} ms / {p95_long * ms:.0f} ms  ({len(long_lived)} renders)",
            ),
            (
                "new JVM per render p50 / p95",
                f"{p50_jvm * ms:.0f} ms / {p95_jvm * ms:.0f} ms  ({len(per_render)} renders)",
            ),
            ("context: ratio p50 (JVM per render / long-lived)", f"{p50_jvm / p50_long:.1f}x"),
            ("ratio p95", f"{p95_jvm / p95_long:.1f}x"),
            (
                "renderer.render() p50 / p95 (check + PNG)",
                f"{statistics.median(full) * ms:.0f} ms / {percentile(full, 0.95) * ms:.0f} ms",
            ),
            ("long-lived process start + warm-up (once)", f"{start_s:.2f} s"),
        ],
    )
    return goals_exit_code([target])


if __name__ == "__main__":
    sys.exit(main())
