"""The history's filters (adapter, min_rating, q: what the studio's gallery filters by) and the styles list."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import LoraFiles
from tests.helpers import assert_error


def generate(client: httpx.Client, prompt: str, **fields: object) -> str:
    body = {"model": "tiny-sd15", "prompt": prompt, "size": "64x64", "steps": 2, **fields}
    response = client.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["data"][0]["id"])


def listed(client: httpx.Client, **params: object) -> list[str]:
    response = client.get("/v1/generations", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def test_filter_by_text_rating_and_adapter(alice: httpx.Client, bob: httpx.Client, lora_files: LoraFiles) -> None:
    token = uuid.uuid4().hex[:10]
    made = alice.post(
        "/v1/models",
        files={"file": ("lora.safetensors", lora_files.sd15_b.read_bytes(), "application/octet-stream")},
        data={"base": "tiny-sd15", "name": f"filter {token}"},
    )
    assert made.status_code == 201, made.text
    adapter = made.json()["id"]
    plain = generate(alice, f"a Red fox {token}")
    as_model = generate(alice, f"a blue bird {token}", model=adapter)
    as_lora = generate(alice, f"a red 100%_fox {token}", loras=[{"id": adapter, "weight": 0.5}])
    bob_same = generate(bob, f"a red fox {token}")

    # Text: any case, within the prompt; % and _ are matched as themselves, not as wildcards.
    assert listed(alice, q=token) == [as_lora, as_model, plain]
    assert listed(alice, q=f"RED FOX {token}") == [plain]
    assert listed(alice, q=f"100%_fox {token}") == [as_lora]
    assert listed(alice, q=f"red%fox {token}") == []
    assert listed(alice, q="   ") == listed(alice)  # blank text filters nothing
    assert listed(bob, q=token) == [bob_same]

    # Adapter: as the model or among the loras.
    assert listed(alice, adapter=adapter) == [as_lora, as_model]
    assert listed(bob, adapter=adapter) == []
    assert listed(alice, adapter="no-such-adapter", q=token) == []

    # Rating: at least the given number; unrated images never match.
    for generation_id, rating in ((plain, 2), (as_model, 4), (as_lora, 5)):
        assert alice.patch(f"/v1/generations/{generation_id}", json={"rating": rating}).status_code == 200
    assert listed(alice, q=token, min_rating=4) == [as_lora, as_model]
    assert listed(alice, q=token, min_rating=5) == [as_lora]
    assert listed(alice, q=token, min_rating=1, adapter=adapter, favorite=False) == [as_lora, as_model]

    # Filters combine with the cursor.
    first = alice.get("/v1/generations", params={"q": token, "limit": 1}).json()
    assert [item["id"] for item in first["data"]] == [as_lora] and first["has_more"] is True
    rest = listed(alice, q=token, after=as_lora)
    assert rest == [as_model, plain]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"min_rating": 0}, "min_rating"),
        ({"min_rating": 6}, "min_rating"),
        ({"min_rating": "five"}, "min_rating"),
        ({"min_rating": "4.5"}, "min_rating"),
        ({"q": "x" * 501}, "q"),
        ({"adapter": "a" * 121}, "adapter"),
        ({"favorite": "maybe"}, "favorite"),
    ],
)
def test_hostile_filters_are_400(alice: httpx.Client, params: dict[str, object], param: str) -> None:
    assert_error(alice.get("/v1/generations", params=params), 400, param=param)


@pytest.mark.parametrize(
    "text", ["'; DROP TABLE generations; --", "<script>alert(1)</script>", "\\", "%", "_", "\u202e\u0000x", "😀"]
)
def test_odd_text_is_searched_not_interpreted(alice: httpx.Client, text: str) -> None:
    response = alice.get("/v1/generations", params={"q": text, "adapter": text})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def test_styles_are_listed(alice: httpx.Client) -> None:
    response = alice.get("/v1/images/styles")
    assert response.status_code == 200, response.text
    styles = {item["id"]: item for item in response.json()["data"]}
    assert "cinematic" in styles
    assert "{prompt}" in styles["cinematic"]["prompt"]
    assert styles["cinematic"]["object"] == "style"
    assert httpx.get(str(alice.base_url.join("/v1/images/styles"))).status_code == 401
