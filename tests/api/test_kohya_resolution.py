"""The kohya config of a dataset of small images, through the real server: its resolution defaults from the data
(no 1024 for images all under 512 px), the file says why, and an asked resolution or a bad one behave."""

from __future__ import annotations

import tomllib

import httpx

from tests.conftest import image_bytes
from tests.helpers import assert_error, make_zip, upload_zip


def test_small_images_get_a_resolution_they_reach(alice: httpx.Client, bob: httpx.Client) -> None:
    sizes = [(320, 240), (300, 300), (400, 300), (200, 200), (480, 360)]
    archive = make_zip({f"img{i}.png": image_bytes((i * 40, 90, 200), size=size) for i, size in enumerate(sizes)})
    dataset = upload_zip(alice, archive, trigger_word="zq").json()
    url = f"/v1/datasets/{dataset['id']}/config"

    response = alice.get(url, params={"format": "kohya"})
    assert response.status_code == 200, response.text
    config = tomllib.loads(response.text)
    # √(w·h) sorted: 415, 346, 300, 277, 200; at least half reach 300 px, so 256 (a 64-px step), not 1024.
    assert config["datasets"][0]["resolution"] == 256
    assert response.text.startswith("# resolution 256 from the 5 images")

    asked = tomllib.loads(alice.get(url, params={"format": "kohya", "resolution": 512}).text)
    assert asked["datasets"][0]["resolution"] == 512
    for bad in ("abc", "100", "8192"):
        assert_error(alice.get(url, params={"format": "kohya", "resolution": bad}), 400, param="resolution")
    assert bob.get(url, params={"format": "kohya"}).status_code == 404
    assert alice.get(url, params={"format": "kohya"}).text == response.text  # nothing changed
