"""The PlantUML renderer against a real PlantUML process (the bundled Java runtime and jar)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from genfoundry.config import DiagramSettings
from genfoundry.diagrams.launcher import launcher_class_bytes
from genfoundry.diagrams.renderer import LocalRenderer, ServerRenderer, encode_source, make_renderer
from genfoundry.diagrams.report import RendererUnavailable, image_size
from genfoundry.errors import Invalid, TooLarge, Unprocessable

SEQUENCE = "@startuml\nAlice -> Bob : hello\nBob --> Alice : hi\n@enduml"
CLASSES = "@startuml\nclass Order {\n  +total : float\n}\nclass Item\nOrder *-- Item\n@enduml"
INVALID = "@startuml\nAlice -> Bob : hello\nthis is not ((( plantuml\n@enduml"
WIDE = "@startuml\n" + "\n".join(f"participant P{i}" for i in range(300)) + "\n@enduml"
VERY_WIDE = "@startuml\n" + "\n".join(f"participant P{i}" for i in range(1500)) + "\n@enduml"


def test_check_reports_type_and_no_errors(plantuml: LocalRenderer) -> None:
    report = plantuml.check(SEQUENCE)
    assert report.valid and report.errors == [] and report.diagram_type == "sequence"
    assert plantuml.check(CLASSES).diagram_type == "class"
    assert plantuml.check("@startmindmap\n* root\n** leaf\n@endmindmap").diagram_type == "mindmap"


def test_check_reports_the_line_of_a_syntax_error(plantuml: LocalRenderer) -> None:
    report = plantuml.check(INVALID)
    assert not report.valid and report.diagram_type is None
    assert [error.line for error in report.errors] == [3]
    assert "Syntax Error" in report.errors[0].message


def test_line_numbers_count_in_the_callers_source_when_wrapped(plantuml: LocalRenderer) -> None:
    report = plantuml.check("Alice -> Bob : hello\nnot ((( valid")
    assert [error.line for error in report.errors] == [2]


def test_missing_enduml_is_an_error_not_a_crash(plantuml: LocalRenderer) -> None:
    report = plantuml.check("@startuml\nAlice -> Bob : hello\n")
    assert not report.valid
    assert report.errors[0].line == 3 and "@end" in report.errors[0].message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("@startuml\n@enduml", "empty"),
        ("@startuml\n' only a comment\n\n@enduml", "empty"),
        ("@startfoo\nx\n@endfoo", "could not render"),  # PlantUML's server throws on an unknown @start
        ("@startuml\nA -> B : " + "x" * 30_000 + "\n@enduml", "failed while drawing"),  # it draws a crash report
    ],
)
def test_sources_plantuml_cannot_draw_are_invalid_not_errors(
    plantuml: LocalRenderer, source: str, message: str
) -> None:
    report = plantuml.check(source)
    assert not report.valid and message in report.errors[0].message
    with pytest.raises(Unprocessable):
        plantuml.render(source, "svg")


def test_render_png_and_svg(plantuml: LocalRenderer) -> None:
    png = plantuml.render_diagram(CLASSES, "png")
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert (png.width, png.height) == struct.unpack(">II", png.data[16:24])
    assert png.diagram_type == "class" and png.media_type == "image/png"
    svg = plantuml.render(SEQUENCE, "svg")
    assert b"<svg" in svg[:200] and b">hello<" in svg
    assert image_size(svg, "svg")[0] > 0


def test_unknown_format_is_400(plantuml: LocalRenderer) -> None:
    with pytest.raises(Invalid) as caught:
        plantuml.render(SEQUENCE, "gif")  # type: ignore[arg-type]
    assert caught.value.param == "format"


def test_unicode_text_survives(plantuml: LocalRenderer) -> None:
    svg = plantuml.render("@startuml\nAlice -> Bob : héllo ✓\n@enduml", "svg").decode()
    assert "h&#233;llo &#10003;" in svg or "héllo ✓" in svg


def test_invalid_render_is_422_with_lines(plantuml: LocalRenderer) -> None:
    with pytest.raises(Unprocessable) as caught:
        plantuml.render(INVALID, "png")
    assert caught.value.status_code == 422 and caught.value.code == "invalid_plantuml"
    details = caught.value.details
    assert isinstance(details, dict)
    assert [error["line"] for error in details["errors"]] == [3]
    assert "Syntax Error" in details["errors"][0]["message"]


def test_refused_directive_never_reaches_plantuml(plantuml: LocalRenderer) -> None:
    with pytest.raises(Invalid, match="!include"):
        plantuml.check("@startuml\n!include /etc/passwd\n@enduml")
    with pytest.raises(Invalid, match="!includeurl"):
        plantuml.render("@startuml\n!includeurl http://127.0.0.1:9/x\nA -> B\n@enduml")


def test_sandbox_profile_is_the_second_wall(plantuml: LocalRenderer) -> None:
    """Past the screen (called directly here), PlantUML itself refuses to read a file or the environment."""
    included = plantuml._fetch("@startuml\n!include /etc/passwd\nA -> B\n@enduml", "svg")
    assert "include" in included.headers["x-plantuml-diagram-error"].lower()
    assert b"root:" not in included.content
    os.environ["GENFOUNDRY_TEST_SECRET"] = "s3cr3t-value"
    try:
        leaked = plantuml._fetch('@startuml\nA -> B : %getenv("GENFOUNDRY_TEST_SECRET")\n@enduml', "svg")
    finally:
        del os.environ["GENFOUNDRY_TEST_SECRET"]
    assert b"s3cr3t-value" not in leaked.content


def test_enormous_diagram_is_413(plantuml: LocalRenderer) -> None:
    with pytest.raises(TooLarge) as caught:
        plantuml.render(WIDE, "png")
    assert caught.value.code == "diagram_too_large"
    details = caught.value.details
    assert isinstance(details, dict) and details["width"] > 4096


def test_output_size_cap(plantuml: LocalRenderer) -> None:
    capped = ServerRenderer(DiagramSettings(renderer="server", server_url=plantuml.process.running().url))
    capped.settings.max_output_bytes = 1024
    try:
        with pytest.raises(TooLarge, match="output limit"):
            capped.render(SEQUENCE, "png")
    finally:
        capped.close()


def test_concurrent_renders_share_one_process(plantuml: LocalRenderer) -> None:
    starts = plantuml.process.starts
    results: list[bytes] = []
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            results.append(plantuml.render(f"@startuml\nA -> B : message {number}\n@enduml", "svg"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 8
    assert plantuml.process.starts == starts


def test_plantuml_listens_on_loopback_only(plantuml: LocalRenderer) -> None:
    port = int(plantuml.process.running().url.rsplit(":", 1)[1])
    listening = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            pytest.skip("needs Linux /proc/net")
        for row in table.read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                listening.append(address)
    # 127.0.0.1 as IPv4, or as an IPv4-mapped IPv6 address (::ffff:127.0.0.1), in /proc's byte order.
    assert listening and all(a in ("0100007F", "0000000000000000FFFF00000100007F") for a in listening), listening


def test_launcher_class_is_a_java_class() -> None:
    data = launcher_class_bytes()
    assert data[:4] == b"\xca\xfe\xba\xbe" and b"serverLoop" in data and b"getLoopbackAddress" in data


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[LocalRenderer]:
    # Size caps lifted, so a wide diagram is slow rather than refused.
    settings = DiagramSettings(timeout_s=0.5, max_side_px=100_000, max_pixels=10**10)
    renderer = LocalRenderer(settings, work_dir=tmp_path, warm_up_sources=(SEQUENCE,))
    yield renderer
    renderer.close()


def test_timeout_stops_the_render_and_the_next_one_works(quick: LocalRenderer) -> None:
    quick.check(SEQUENCE)  # started and warm
    first_pid = quick.process.pid
    with pytest.raises(TooLarge) as caught:
        quick.render(VERY_WIDE, "svg")  # seconds of layout here; far over 0.5 s on any CPU
    assert caught.value.code == "render_timeout"
    assert quick.process.pid is None  # the JVM doing the slow work was stopped
    assert quick.check(SEQUENCE).valid
    assert quick.process.pid not in (None, first_pid) and quick.process.starts == 2


def test_a_dead_process_is_restarted(quick: LocalRenderer) -> None:
    quick.check(SEQUENCE)
    pid = quick.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert quick.check(SEQUENCE).valid
    assert quick.process.pid != pid and quick.process.starts == 2


def test_the_jvm_ends_with_the_interpreter_that_started_it(tmp_path: Path) -> None:
    """A renderer never closed (a crash, a forgotten close) leaves no PlantUML process behind."""
    code = (
        "from pathlib import Path\n"
        "from genfoundry.config import DiagramSettings\n"
        "from genfoundry.diagrams.renderer import LocalRenderer\n"
        f"renderer = LocalRenderer(DiagramSettings(), work_dir=Path({str(tmp_path)!r}), warm_up_sources=())\n"
        f"assert renderer.check({SEQUENCE!r}).valid\n"
        "print(renderer.process.pid)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_server_renderer_speaks_the_plantuml_server_protocol(plantuml: LocalRenderer) -> None:
    """GET /{format}/{encoded}: the protocol of plantuml-server, which PlantUML's own server also serves."""
    server = make_renderer(
        DiagramSettings(renderer="server", server_url=plantuml.process.running().url), work_dir=Path("/nonexistent")
    )
    assert isinstance(server, ServerRenderer)
    try:
        assert server.check(SEQUENCE).diagram_type == "sequence"
        assert [e.line for e in server.check(INVALID).errors] == [3]
        # Sequence diagrams need no Graphviz; PlantUML's server, run bare here, has no `dot` for class layouts.
        assert server.render(SEQUENCE, "png").startswith(b"\x89PNG")
    finally:
        server.close()


def test_unreachable_server_is_503() -> None:
    server = ServerRenderer(DiagramSettings(renderer="server", server_url="http://127.0.0.1:9", timeout_s=2))
    with pytest.raises(RendererUnavailable) as caught:
        server.check(SEQUENCE)
    assert caught.value.status_code == 503
    server.close()


def test_missing_java_is_503(tmp_path: Path) -> None:
    renderer = LocalRenderer(DiagramSettings(java=tmp_path / "no-java"), work_dir=tmp_path)
    with pytest.raises(RendererUnavailable, match="not a file"):
        renderer.check(SEQUENCE)
    renderer.close()


def test_encode_source_round_trips() -> None:
    import base64
    import string
    import zlib

    encoded = encode_source(SEQUENCE)
    alphabet = string.digits + string.ascii_uppercase + string.ascii_lowercase + "-_"
    standard = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    raw = base64.b64decode(encoded.translate(str.maketrans(alphabet, standard)))
    assert zlib.decompressobj(-15).decompress(raw).decode() == SEQUENCE
