"""The fine-tuning methods as the registry describes them (what the studio's training form is built from), and
promoting a checkpoint to a named model: through the real server, with hostile input and another user's 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from genfoundry.schemas.fine_tuning import (
    ClassifierHyperparameters,
    DreamBoothHyperparameters,
    ImageTrainingHyperparameters,
    SftHyperparameters,
)
from genfoundry.services.fine_tuning.registry import METHODS
from tests.api.test_training_jobs import create_job, finished, red_dataset, wait_until
from tests.conftest import Keys, LiveServer
from tests.helpers import JSONL_OK, assert_error

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def methods(client: httpx.Client) -> dict[str, dict[str, Any]]:
    response = client.get("/v1/fine_tuning/methods")
    assert response.status_code == 200, response.text
    return {method["id"]: method for method in response.json()["data"]}


def test_methods_are_the_registry_with_their_hyperparameters(live: LiveServer, alice: httpx.Client) -> None:
    listed = methods(alice)
    assert set(listed) == set(METHODS)
    schemas = {
        "lora": ImageTrainingHyperparameters,
        "dreambooth": DreamBoothHyperparameters,
        "supervised": SftHyperparameters,
        "classifier": ClassifierHyperparameters,
    }
    for name, schema in schemas.items():
        method = listed[name]
        assert method["object"] == "fine_tuning.method" and method["description"]
        assert [h["name"] for h in method["hyperparameters"]] == list(schema.model_fields)
        assert all(h["description"] for h in method["hyperparameters"]), name
        assert all(set(h["defaults"]) == set(method["families"]) for h in method["hyperparameters"])

    lora = listed["lora"]
    assert lora["dataset"] == "image" and lora["resumable"] is True
    assert {"id": "tiny-sd15", "family": "sd15"} in lora["bases"]
    hyper = {h["name"]: h for h in lora["hyperparameters"]}
    assert hyper["rank"]["type"] == "integer" and (hyper["rank"]["minimum"], hyper["rank"]["maximum"]) == (1, 256)
    assert hyper["resolution"]["defaults"] == {"sd15": 512, "sdxl": 1024, "flux": 512}
    assert hyper["max_steps"]["defaults"]["flux"] == 2000 and hyper["n_epochs"]["auto"] is True
    assert hyper["validation_prompts"]["type"] == "array" and hyper["validation_prompts"]["max_length"] == 8
    dreambooth = {h["name"]: h for h in listed["dreambooth"]["hyperparameters"]}
    assert dreambooth["train_mode"]["choices"] == ["lora", "full"]
    assert dreambooth["max_steps"]["defaults"]["sd15"] == 500  # DreamBooth's own default, not LoRA's

    sft = listed["supervised"]
    assert sft["dataset"] == "text" and sft["families"] == ["text"] and sft["validation_file"] is True
    assert not any(listed[name]["validation_file"] for name in ("lora", "dreambooth", "classifier"))
    assert {"id": "tiny-llm", "family": "text"} in sft["bases"]
    sft_hyper = {h["name"]: h for h in sft["hyperparameters"]}
    assert sft_hyper["n_epochs"]["defaults"] == {"text": 3} and sft_hyper["quantization"]["choices"] == ["none", "4bit"]
    classifier = listed["classifier"]
    assert classifier["resumable"] is False and classifier["dataset"] == "classification"
    assert {h["name"]: h["defaults"] for h in classifier["hyperparameters"]}["c"] == {"encoder": "auto"}
    assert_error(httpx.get(f"{live.url}/v1/fine_tuning/methods"), 401)


@pytest.mark.parametrize("method", ["lora", "supervised"])
def test_the_documented_ranges_are_the_ones_the_recipe_checks(alice: httpx.Client, method: str) -> None:
    """Just outside each documented range is a 400 naming the field (the recipe's check, not the listing's)."""
    if method == "lora":
        dataset, model = red_dataset(alice, n=1), "tiny-sd15"
    else:
        files = {"file": ("t.jsonl", JSONL_OK)}
        dataset, model = alice.post("/v1/files", files=files, data={"purpose": "fine-tune"}).json()["id"], "tiny-llm"
    for hyper in methods(alice)[method]["hyperparameters"]:
        if hyper["type"] not in ("integer", "number"):
            continue
        step = 1 if hyper["type"] == "integer" else 0.5
        outside = [hyper["maximum"] + step * max(1, hyper["maximum"])]
        if hyper["minimum"] is not None:
            outside.append(hyper["minimum"] - step)
        for value in outside:
            value = int(value) if hyper["type"] == "integer" else value
            body = {
                "model": model,
                "training_file": dataset,
                "method": {"type": method, method: {"hyperparameters": {hyper["name"]: value}}},
            }
            error = assert_error(alice.post("/v1/fine_tuning/jobs", json=body), 400)
            assert error["param"] in (hyper["name"], "epochs"), (hyper["name"], value, error)


@pytest.fixture(scope="module")
def finished_job(live: LiveServer, keys: Keys) -> dict[str, Any]:
    """A 2-step tiny LoRA job with a checkpoint at each step, run to its end."""
    with live.client(keys.alice) as alice:
        job = create_job(alice, red_dataset(alice, n=2), max_steps=2, checkpoint_every_n_steps=1)
        done = wait_until(alice, job["id"], finished)
        assert done["status"] == "succeeded", done
        return done


def test_promote_a_checkpoint_to_a_named_model(
    alice: httpx.Client, bob: httpx.Client, finished_job: dict[str, Any]
) -> None:
    job_id = finished_job["id"]
    checkpoints = alice.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints").json()["data"]
    first = checkpoints[-1]
    promote = f"/v1/fine_tuning/jobs/{job_id}/checkpoints/{first['id']}/promote"

    response = alice.post(promote, json={"name": HOSTILE, "trigger_word": "<b>zq</b>"})
    assert response.status_code == 201, response.text
    model = response.json()
    assert model["name"] == HOSTILE and model["kind"] == "adapter" and model["trigger_word"] == "<b>zq</b>"
    assert model["id"].startswith("script-alert-1-script-img-src-x-onerror-alert-2")  # ids stay slugs
    assert model["tags"]["promoted_from"] == first["id"] and model["tags"]["step"] == "1"
    assert model["id"] in [m["id"] for m in alice.get("/v1/models").json()["data"]]
    assert model["id"] not in [m["id"] for m in bob.get("/v1/models").json()["data"]]

    # The promoted model is a copy: it generates after the checkpoint's own adapter is deleted.
    assert alice.delete(f"/v1/models/{first['fine_tuned_model_checkpoint']}").status_code == 200
    made = alice.post("/v1/images/generations", json={"model": model["id"], "prompt": "a shoe", "size": "64x64"})
    assert made.status_code == 200, made.text
    assert made.json()["data"][0]["revised_prompt"].startswith("<b>zq</b>")
    assert_error(alice.post(promote, json={"name": "again"}), 404, param="checkpoint_id")  # its adapter is gone

    # Another user's job, whatever the checkpoint, is a 404 that tells nothing.
    newest = f"/v1/fine_tuning/jobs/{job_id}/checkpoints/{checkpoints[0]['id']}/promote"
    assert_error(bob.post(newest, json={"name": "mine now"}), 404)
    assert alice.post(newest, json={"name": "kept"}).json()["trigger_word"] == "rdx"  # the checkpoint's own


@pytest.mark.parametrize(
    ("checkpoint", "body", "status", "param"),
    [
        ("ftckpt_999999", {"name": "x"}, 404, "checkpoint_id"),
        ("ftckpt_abc", {"name": "x"}, 404, "checkpoint_id"),
        ("ev_1", {"name": "x"}, 404, "checkpoint_id"),
        (None, {"name": ""}, 400, "name"),
        (None, {"name": "   "}, 400, "name"),
        (None, {"name": "two\nlines"}, 400, "name"),
        (None, {"name": "x" * 201}, 400, "name"),
        (None, {"name": "x", "trigger_word": "a\u0000b"}, 400, "trigger_word"),
        (None, {"name": "x", "trigger_word": "y" * 101}, 400, "trigger_word"),
        (None, {"name": "x", "base": "tiny-sd15"}, 400, "base"),
        (None, {}, 400, "name"),
    ],
)
def test_bad_promotions(
    alice: httpx.Client,
    finished_job: dict[str, Any],
    checkpoint: str | None,
    body: dict[str, Any],
    status: int,
    param: str,
) -> None:
    job_id = finished_job["id"]
    if checkpoint is None:
        checkpoint = alice.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints").json()["data"][0]["id"]
    assert_error(
        alice.post(f"/v1/fine_tuning/jobs/{job_id}/checkpoints/{checkpoint}/promote", json=body), status, param=param
    )
    assert_error(alice.post(f"/v1/fine_tuning/jobs/job_nope/checkpoints/{checkpoint}/promote", json={"name": "x"}), 404)
