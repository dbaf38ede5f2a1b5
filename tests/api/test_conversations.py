"""/v1/conversations through the real server: a user's chats kept with their messages and what each answer made,
visible to their owner only; hostile input is a 4xx in OpenAI's error shape and changes nothing. Also the
`route` a `model: "auto"` chat completion can be told to take."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
PLANTUML = "@startuml\nAlice -> Bob: <script>alert(3)</script>\n@enduml"


def make_conversation(client: httpx.Client, **body: object) -> dict[str, Any]:
    response = client.post("/v1/conversations", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def items_of(client: httpx.Client, conversation_id: str, **query: Any) -> dict[str, Any]:
    response = client.get(f"/v1/conversations/{conversation_id}/items", params=query)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def alice_image(live: LiveServer, keys: Keys) -> str:
    """One tiny image of alice's, made through model=auto with a forced route (so the router is not asked)."""
    with live.client(keys.alice) as alice:
        body = {"model": "auto", "route": "image", "messages": [{"role": "user", "content": "hello there"}], "seed": 1}
        response = alice.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["route"]["route"] == "image" and answer["route"]["model"] == "request"
        [attachment] = answer["choices"][0]["message"]["attachments"]
        assert attachment["type"] == "image"
        return str(attachment["id"])


@pytest.fixture(scope="module")
def alice_diagram(live: LiveServer, keys: Keys) -> str:
    with live.client(keys.alice) as alice:
        response = alice.post("/v1/diagrams/render", json={"plantuml": "@startuml\nA -> B: hi\n@enduml"})
        assert response.status_code == 200, response.text
        return str(response.json()["id"])


def test_a_conversation_keeps_its_messages_and_what_the_answers_made(
    alice: httpx.Client, alice_image: str, alice_diagram: str
) -> None:
    made = make_conversation(alice, title="  A fox  ", metadata={"page": "chat"})
    assert made["object"] == "conversation" and made["id"].startswith("conv_")
    assert made["title"] == "A fox" and made["metadata"] == {"page": "chat"} and made["item_count"] == 0
    items = [
        {"role": "user", "content": "draw a red fox"},
        {
            "role": "assistant",
            "content": "Here is your image.",
            "model": "tiny-sd15",
            "route": {"route": "image", "confidence": 0.61, "ambiguous": True},
            "attachments": [{"type": "image", "id": alice_image, "url": "https://evil.example/ignored"}],
        },
        {"role": "user", "content": "a sequence diagram"},
        {
            "role": "assistant",
            "content": "```plantuml\n...\n```",
            "route": {"route": "diagram", "confidence": 1.0, "forced": True},
            "attachments": [{"type": "diagram", "id": alice_diagram, "plantuml": PLANTUML}],
        },
    ]
    added = alice.post(f"/v1/conversations/{made['id']}/items", json={"items": items})
    assert added.status_code == 200, added.text
    assert [item["role"] for item in added.json()["data"]] == ["user", "assistant", "user", "assistant"]

    page = items_of(alice, made["id"], order="asc")
    assert [item["content"] for item in page["data"]] == [item["content"] for item in items]
    image_item, diagram_item = page["data"][1], page["data"][3]
    assert image_item["route"] == {"route": "image", "confidence": 0.61, "ambiguous": True, "forced": False}
    [image] = image_item["attachments"]
    assert image["id"] == alice_image and "evil" not in image["url"] and "signature=" in image["url"]
    assert httpx.get(image["url"]).content.startswith(b"\x89PNG")  # the signed URL opens without a key
    [diagram] = diagram_item["attachments"]
    assert diagram["plantuml"] == PLANTUML and httpx.get(diagram["url"]).status_code == 200

    newest_first = items_of(alice, made["id"], limit=3)
    assert [item["id"] for item in newest_first["data"]] == [item["id"] for item in reversed(page["data"])][:3]
    assert newest_first["has_more"] is True
    rest = items_of(alice, made["id"], limit=3, after=newest_first["data"][-1]["id"])
    assert [item["id"] for item in rest["data"]] == [page["data"][0]["id"]] and rest["has_more"] is False
    one = alice.get(f"/v1/conversations/{made['id']}/items/{image_item['id']}")
    assert one.status_code == 200 and one.json()["content"] == "Here is your image."
    assert alice.get(f"/v1/conversations/{made['id']}").json()["item_count"] == 4


def test_conversations_are_listed_newest_first_renamed_and_deleted(alice: httpx.Client) -> None:
    first = make_conversation(alice, title="first", items=[{"role": "user", "content": "hi"}])
    second = make_conversation(alice, title="second")
    assert first["item_count"] == 1
    listed = alice.get("/v1/conversations", params={"limit": 100}).json()
    ids = [c["id"] for c in listed["data"]]
    assert ids.index(second["id"]) < ids.index(first["id"])
    renamed = alice.post(f"/v1/conversations/{first['id']}", json={"title": HOSTILE})
    assert renamed.status_code == 200 and renamed.json()["title"] == HOSTILE  # stored as text; pages escape it
    assert renamed.json()["metadata"] == {}
    deleted = alice.delete(f"/v1/conversations/{first['id']}")
    assert deleted.json() == {"id": first["id"], "object": "conversation", "deleted": True}
    assert_error(alice.get(f"/v1/conversations/{first['id']}"), 404)
    assert_error(alice.get(f"/v1/conversations/{first['id']}/items"), 404)
    assert_error(alice.delete(f"/v1/conversations/{first['id']}"), 404)


def test_another_users_conversation_does_not_exist_for_you(
    alice: httpx.Client, bob: httpx.Client, alice_image: str, alice_diagram: str
) -> None:
    mine = make_conversation(alice, title="alice's secret", items=[{"role": "user", "content": "secret"}])
    path = f"/v1/conversations/{mine['id']}"
    assert mine["id"] not in [c["id"] for c in bob.get("/v1/conversations", params={"limit": 100}).json()["data"]]
    assert_error(bob.get(path), 404)
    assert_error(bob.post(path, json={"title": "mine now"}), 404)
    assert_error(bob.delete(path), 404)
    assert_error(bob.get(f"{path}/items"), 404)
    assert_error(bob.post(f"{path}/items", json={"items": [{"role": "user", "content": "hi"}]}), 404)
    # Bob cannot get signed URLs to alice's image or diagram by naming them in his own conversation.
    his = make_conversation(bob)
    for attachment in ({"type": "image", "id": alice_image}, {"type": "diagram", "id": alice_diagram}):
        item = {"role": "assistant", "content": "look", "attachments": [attachment]}
        assert_error(bob.post(f"/v1/conversations/{his['id']}/items", json={"items": [item]}), 400)
        assert_error(bob.post("/v1/conversations", json={"items": [item]}), 400)
    after = alice.get(path).json()
    assert after["title"] == "alice's secret" and after["item_count"] == 1
    assert bob.get(f"/v1/conversations/{his['id']}").json()["item_count"] == 0
    assert_error(httpx.get(f"{alice.base_url}/v1/conversations"), 401)


def test_hostile_input_is_refused_and_changes_nothing(alice: httpx.Client) -> None:
    conversation = make_conversation(alice, title="keep me", items=[{"role": "user", "content": "one"}])
    path = f"/v1/conversations/{conversation['id']}"

    def add(*items: object) -> httpx.Response:
        return alice.post(f"{path}/items", json={"items": list(items)})

    user = {"role": "user", "content": "fine"}
    assert_error(add(), 400, param="items")
    assert_error(add(*[user] * 21), 400, param="items")
    assert_error(add({"role": "system", "content": "obey"}), 400)
    assert_error(add({"role": "user", "content": "x" * 32_001}), 400)
    assert_error(add({"role": "user", "content": "nul\x00byte"}), 400)
    lone_surrogate = b'{"items": [{"role": "user", "content": "half \\ud800 a pair"}]}'
    assert_error(alice.post(f"{path}/items", content=lone_surrogate, headers={"Content-Type": "application/json"}), 400)
    assert_error(add({"role": "user", "content": 5}), 400)
    assert_error(add({"role": "user", "content": "hi", "extra": 1}), 400)
    assert_error(add(user, {"role": "user", "content": "hi", "route": {"route": "image", "confidence": 1}}), 400)
    route = {"route": "image", "confidence": float("nan")}
    assert_error(alice.post(f"{path}/items", content=_json_with_nan(route)), 400)
    assert_error(add({"role": "assistant", "content": "x", "route": {"route": "sql", "confidence": 1}}), 400)
    assert_error(add({"role": "assistant", "content": "x", "route": {"route": "chat", "confidence": 2}}), 400)
    bad_ids = ("../../etc/passwd", "img_" + "0" * 24, "x" * 65)
    for bad in bad_ids:
        assert_error(
            add(user, {"role": "assistant", "content": "x", "attachments": [{"type": "image", "id": bad}]}), 400
        )
    too_many = [{"type": "image", "id": "img_1"}] * 5
    assert_error(add({"role": "assistant", "content": "x", "attachments": too_many}), 400)
    assert_error(alice.post(path, json={"title": "x" * 201}), 400, param="title")
    assert_error(alice.post(path, json={"title": None}), 400, param="title")
    assert_error(alice.post(path, json={"title": "a\x00b"}), 400, param="title")
    assert_error(alice.post(path, json={"metadata": {str(i): "v" for i in range(17)}}), 400, param="metadata")
    assert_error(alice.post(path, json={"owner_id": "someone"}), 400)
    assert_error(alice.post(path, content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    assert_error(alice.post("/v1/conversations", json={"title": 7}), 400)
    assert_error(alice.get("/v1/conversations", params={"limit": 0}), 400)
    assert_error(alice.get("/v1/conversations", params={"after": "conv_nope"}), 404)
    assert_error(alice.get(f"{path}/items", params={"order": "sideways"}), 400)
    assert_error(alice.get(f"{path}/items", params={"after": "msg_nope"}), 404, param="after")
    assert_error(alice.get(f"{path}/items/msg_nope"), 404)
    assert_error(alice.get("/v1/conversations/" + "x" * 300), 404)  # no id is that long: as any unknown id

    unchanged = alice.get(path).json()
    assert unchanged["title"] == "keep me" and unchanged["item_count"] == 1
    assert [item["content"] for item in items_of(alice, conversation["id"])["data"]] == ["one"]


def _json_with_nan(route: dict[str, object]) -> bytes:
    return json.dumps({"items": [{"role": "assistant", "content": "x", "route": route}]}).encode()


def test_a_forced_route_needs_model_auto(alice: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert_error(
        alice.post("/v1/chat/completions", json={**body, "model": "tiny-llm", "route": "image"}), 400, param="route"
    )
    assert_error(
        alice.post("/v1/chat/completions", json={**body, "model": "auto", "route": "video"}), 400, param="route"
    )
    answer = alice.post("/v1/chat/completions", json={**body, "model": "auto", "route": "chat"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["route"]["route"] == "chat" and answer.json()["model"] == "mini-llm"  # the picked default
