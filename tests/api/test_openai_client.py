"""The official openai client against the real server."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
from PIL import Image

from tests.conftest import Keys, LiveServer


@pytest.fixture
def client(live: LiveServer, keys: Keys) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=keys.alice, max_retries=0)


def test_images_generate_b64(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="tiny-sd15", prompt="a lighthouse at dusk", size="64x64", response_format="b64_json"
    )
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or "")))
    assert image.format == "PNG"
    assert image.size == (64, 64)
    assert result.data[0].revised_prompt == "a lighthouse at dusk"


def test_images_generate_extra_fields_and_url(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="tiny-flux",
        prompt="a lighthouse",
        size="64x64",
        n=2,
        extra_body={"seed": 42, "steps": 2, "style": "minimalist"},
    )
    assert len(result.data) == 2
    assert result.data[0].url and "/v1/images/" in result.data[0].url
    assert result.data[0].model_extra["seed"] == 42
    assert result.data[0].revised_prompt.startswith("minimalist composition, a lighthouse")


def test_images_edit(client: openai.OpenAI) -> None:
    def edit(colour: tuple[int, int, int], prompt: str) -> tuple[Image.Image, str | None]:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
        buffer.seek(0)
        result = client.images.edit(
            model="tiny-sd15",
            image=("in.png", buffer, "image/png"),
            prompt=prompt,
            size="64x64",
            response_format="b64_json",
            extra_body={"strength": 0.5, "steps": 4, "seed": 7},
        )
        image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or "")))
        return image, result.data[0].revised_prompt

    def change(a: Image.Image, b: Image.Image) -> float:
        """Mean absolute pixel difference (0-255)."""
        return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())

    image, revised = edit((0, 0, 255), "a blue sea")
    assert image.size == (64, 64)
    assert revised == "a blue sea"
    # The same image, prompt and seed give the same picture (up to a unit of rounding in a pixel or two: measured
    # 0.0002), so what changes below comes from the one input changed (measured 2.7 and 5.7 on tiny-sd15).
    assert change(edit((0, 0, 255), "a blue sea")[0], image) < 0.05
    assert change(edit((255, 0, 0), "a blue sea")[0], image) > 0.5  # the edit starts from the uploaded image
    assert change(edit((0, 0, 255), "a red desert")[0], image) > 0.5  # and follows the prompt


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "tiny-sd15" in ids
    assert client.models.retrieve("tiny-flux").id == "tiny-flux"


def test_errors_raise_typed_exceptions(client: openai.OpenAI, live: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="nope", prompt="x", size="64x64")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="tiny-sd15", prompt="x", size="63x64")
    assert "multiples of 8" in str(caught.value)
    bad = openai.OpenAI(base_url=f"{live.url}/v1", api_key="gf-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_files_create_list_retrieve_delete(client: openai.OpenAI) -> None:
    data = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    created = client.files.create(file=("chat.jsonl", data), purpose="fine-tune")
    assert created.object == "file"
    assert created.bytes == len(data)
    assert created.filename == "chat.jsonl"
    assert created.status == "processed"
    assert client.files.retrieve(created.id).id == created.id
    assert created.id in [f.id for f in client.files.list()]
    assert client.files.content(created.id).content == data
    assert client.files.delete(created.id).deleted is True
    with pytest.raises(openai.UnprocessableEntityError):
        client.files.create(file=("bad.jsonl", b"{nope\n"), purpose="fine-tune")
