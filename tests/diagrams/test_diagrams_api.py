"""POST /v1/diagrams/render and the diagram content URL through the real server, bad input included."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import LiveServer
from tests.diagrams.test_security import invisible_characters
from tests.helpers import assert_error

SEQUENCE = "@startuml\nAlice -> Bob : hello\nBob --> Alice : hi\n@enduml"


def test_render_png_returns_a_signed_url(live: LiveServer, alice: httpx.Client) -> None:
    response = alice.post("/v1/diagrams/render", json={"plantuml": SEQUENCE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "diagram.render" and body["id"].startswith("dgm_")
    assert body["valid"] is True and body["errors"] == []
    assert body["diagram_type"] == "sequence" and body["format"] == "png"
    assert body["width"] > 0 and body["height"] > 0 and "b64_json" not in body
    with httpx.Client() as anonymous:  # the signed URL opens without a key, as OpenAI's image URLs do
        image = anonymous.get(body["url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert image.headers["x-content-type-options"] == "nosniff"


def test_render_svg_as_b64_json(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/diagrams/render",
        json={
            "plantuml": "@startmindmap\n* Trip\n** Transport\n** Lodging\n@endmindmap",
            "format": "svg",
            "response_format": "b64_json",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["diagram_type"] == "mindmap" and "url" not in body
    svg = base64.b64decode(body["b64_json"])
    assert b"<svg" in svg and b">Transport<" in svg


def test_content_is_for_its_owner_or_a_signature(live: LiveServer, alice: httpx.Client, bob: httpx.Client) -> None:
    body = alice.post("/v1/diagrams/render", json={"plantuml": SEQUENCE, "format": "svg"}).json()
    path = f"/v1/diagrams/{body['id']}/content"
    owned = alice.get(path)
    assert owned.status_code == 200 and owned.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in owned.headers["content-security-policy"]
    assert_error(bob.get(path), 404)
    with live.client() as anonymous:
        assert_error(anonymous.get(path), 401)
        assert_error(anonymous.get(path, params={"expires": 9999999999, "signature": "0" * 64}), 401)
        assert_error(anonymous.get("/v1/diagrams/dgm_nothere/content"), 401)
    assert_error(alice.get("/v1/diagrams/dgm_000000000000000000000000/content"), 404)
    assert_error(alice.get("/v1/diagrams/..%2F..%2Fsecret/content"), 404)


def test_invalid_plantuml_is_422_with_line_numbers(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/diagrams/render", json={"plantuml": "@startuml\nAlice -> Bob\nthis is ((( wrong\n@enduml"}
    )
    error = assert_error(response, 422, param="plantuml")
    assert error["code"] == "invalid_plantuml"
    assert error["details"]["errors"][0]["line"] == 3
    assert "line 3" in error["message"]
    unclosed = assert_error(alice.post("/v1/diagrams/render", json={"plantuml": "@startuml\nA -> B"}), 422)
    assert unclosed["details"]["errors"][0]["line"] == 2


@pytest.mark.parametrize(
    ("plantuml", "construct"),
    [
        ("@startuml\n!include /etc/passwd\nA -> B\n@enduml", "!include"),
        ("@startuml\nA -> B\n!includeurl http://127.0.0.1:9/evil.puml\n@enduml", "!includeurl"),
        ("@startuml\n!import /tmp/lib.zip\nA -> B\n@enduml", "!import"),
        ("@startuml\n!includesub /etc/passwd!X\n@enduml", "!includesub"),
        ("@startuml\n!pragma graphviz_dot /bin/sh\nclass A\n@enduml", "!pragma graphviz_dot /bin/sh"),
        ('@startuml\nA -> B : %getenv("HOME")\n@enduml', "%getenv()"),
    ],
)
def test_file_url_and_environment_access_is_refused(alice: httpx.Client, plantuml: str, construct: str) -> None:
    error = assert_error(alice.post("/v1/diagrams/render", json={"plantuml": plantuml}), 400, param="plantuml")
    assert error["details"]["directive"] == construct
    assert construct in error["message"] and "root:" not in error["message"]


@pytest.mark.parametrize(
    ("line", "construct"),
    [
        ("\ufeff!include /etc/passwd", "!include"),
        ("\ufeff!include <C4/C4_Context>", "!include"),
        ("\ufeff!dump_memory", "!dump_memory"),
        ("\ufeff!option handwritten true", "!option"),
        ("\ufeff!pragma layout dot", "!pragma layout dot"),
    ],
)
def test_a_byte_order_mark_does_not_hide_a_directive(alice: httpx.Client, line: str, construct: str) -> None:
    response = alice.post("/v1/diagrams/render", json={"plantuml": f"@startuml\n{line}\nA -> B\n@enduml"})
    error = assert_error(response, 400, param="plantuml")
    assert error["code"] == "plantuml_not_allowed"
    assert error["details"] == {"line": 2, "directive": construct}


@pytest.mark.parametrize(
    ("template", "opens_line"),
    [
        ("@startuml\n{c}{d}\n@enduml", True),
        ("@startuml\n  {c}{d}\n@enduml", False),
        ("{c}{d}\n@startuml\nA -> B\n@enduml", True),
    ],
)
def test_no_invisible_character_hides_a_directive(alice: httpx.Client, template: str, opens_line: bool) -> None:
    """Every format character, Unicode space and C1 control before `!include` or `!define`: a 400 naming it."""
    answers: dict[str, list[str]] = {}
    for char in invisible_characters():
        for directive in ("!include /etc/passwd", "!define X Y"):
            if char == "\ufeff" and opens_line and directive == "!define X Y":
                continue  # a byte-order mark opening a line is dropped, as PlantUML drops it
            response = alice.post("/v1/diagrams/render", json={"plantuml": template.format(c=char, d=directive)})
            answer = response.json()["error"]["code"] if response.status_code == 400 else str(response.status_code)
            answers.setdefault(answer, []).append(f"U+{ord(char):04X} {directive}")
    assert list(answers) == ["plantuml_not_allowed"], {answer: chars[:5] for answer, chars in answers.items()}


def test_a_lone_surrogate_is_400_not_500(alice: httpx.Client) -> None:
    """JSON may escape half a surrogate pair; PlantUML cannot be sent one (the request is refused before)."""
    body = b'{"plantuml": "@startuml\\nAlice -> Bob : \\ud83d\\n@enduml"}'
    response = alice.post("/v1/diagrams/render", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, param="plantuml")


def test_enormous_diagram_is_413(alice: httpx.Client) -> None:
    wide = "@startuml\n" + "\n".join(f"participant P{i}" for i in range(300)) + "\n@enduml"
    error = assert_error(alice.post("/v1/diagrams/render", json={"plantuml": wide}), 413, param="plantuml")
    assert error["code"] == "diagram_too_large"
    huge = "@startuml\n" + "A -> B : hello\n" * 10_000 + "@enduml"
    assert_error(alice.post("/v1/diagrams/render", json={"plantuml": huge}), 413, param="plantuml")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"plantuml": ""}, "plantuml"),
        ({"plantuml": "   \n  "}, "plantuml"),
        ({}, "plantuml"),
        ({"plantuml": SEQUENCE, "format": "gif"}, "format"),
        ({"plantuml": SEQUENCE, "response_format": "file"}, "response_format"),
        ({"plantuml": SEQUENCE, "color": "red"}, "color"),
        ({"plantuml": ["@startuml"]}, "plantuml"),
        ({"plantuml": "@startuml\n\x00!include /etc/passwd\n@enduml"}, "plantuml"),
    ],
)
def test_bad_requests_are_400(alice: httpx.Client, body: dict[str, object], param: str) -> None:
    assert_error(alice.post("/v1/diagrams/render", json=body), 400, param=param)


def test_needs_a_key_and_the_server_stays_up(live: LiveServer, alice: httpx.Client) -> None:
    with live.client() as anonymous:
        assert_error(anonymous.post("/v1/diagrams/render", json={"plantuml": SEQUENCE}), 401)
    for bad in ("@startuml\n!include /etc/passwd\n@enduml", "@startuml\n(((\n@enduml", "x" * 70_000):
        assert alice.post("/v1/diagrams/render", json={"plantuml": bad}).status_code in (400, 413, 422)
    assert alice.post("/v1/diagrams/render", json={"plantuml": SEQUENCE}).status_code == 200
