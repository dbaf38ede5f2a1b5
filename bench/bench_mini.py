"""mini-sd15 through a real server (`genfoundry serve` on a fresh home): does it do what the quickstart promises?

1. Prompt adherence on the 64 held-out prompts ((colour, shape, background) triples no training caption has), read
   back by genfoundry.models.mini_scenes.read_image. Goals: shape colour >= 80%, background >= 80%, shape >= 60%.
2. A new word taught through /v1/fine_tuning/jobs: eight yellow stars on purple captioned "a zzq", then "a zzq"
   from the base and from the result; the mean-colour distance to the training images, tuned / base. Goal <= 0.5.
   LoRA and DreamBooth (full UNet fine-tune with prior preservation off) side by side.
3. img2img through /v1/images/edits on 16 scenes with another scene's prompt: at strength 0.2 the input's background
   and shape colour are kept (at the default guidance 4, where guidance pulls the shape's colour towards the
   prompt's, and at 1.5), at 0.9 the prompt's background is drawn.

And mini-captioner: a dataset of the 64 held-out scenes (a varied render of each) uploaded as a ZIP and captioned by
a /v1/datasets caption job; a caption is right when it names the scene's colour, shape and background. Goal >= 80%.

    python -m bench.bench_mini [--seeds 1] [--steps 120] [--only sd15|captioner]
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import time
import zipfile
from typing import Any

import httpx
import numpy as np
from PIL import Image

from bench.common import make_home, report, running_server
from genfoundry.models import mini_scenes

MODEL = "mini-sd15"
GOALS = {"colour": 0.8, "background": 0.8, "shape": 0.6}
CAPTIONER_GOAL = 0.8


def _image(answer: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(answer["data"][0]["b64_json"]))).convert("RGB")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def generate(client: httpx.Client, model: str, prompt: str, seed: int) -> Image.Image:
    body = {"model": model, "prompt": prompt, "size": "64x64", "seed": seed, "response_format": "b64_json"}
    response = client.post("/v1/images/generations", json=body)
    response.raise_for_status()
    return _image(response.json())


def adherence(client: httpx.Client, seeds: int) -> dict[str, float]:
    scenes = mini_scenes.held_out_scenes() * seeds
    images = [generate(client, MODEL, scene.caption, seed) for seed, scene in enumerate(scenes)]
    return mini_scenes.adherence(images, scenes)


def teach(client: httpx.Client, method: str, steps: int) -> tuple[float, float, float]:
    """(base distance, tuned distance, training seconds) for the zzq concept trained with `method`."""
    concept = mini_scenes.TAUGHT_SCENE
    dataset = client.post(
        "/v1/datasets",
        files={"file": ("zzq.zip", mini_scenes.taught_word_zip(), "application/zip")},
        data={"name": "zzq"},
    )
    dataset.raise_for_status()
    hyperparameters = {"resolution": 64, "max_steps": steps, "batch_size": 4, "learning_rate": 2e-3}
    if method == "lora":
        hyperparameters["rank"] = 8
    else:
        hyperparameters["learning_rate"] = 2e-4
    body = {
        "model": MODEL,
        "training_file": dataset.json()["id"],
        "seed": 1,
        "method": {"type": method, method: {"hyperparameters": hyperparameters}},
    }
    started = time.monotonic()
    job = client.post("/v1/fine_tuning/jobs", json=body)
    job.raise_for_status()
    job_id = job.json()["id"]
    while (state := client.get(f"/v1/fine_tuning/jobs/{job_id}").json())["status"] in ("queued", "running"):
        time.sleep(1)
    seconds = time.monotonic() - started
    if state["status"] != "succeeded":
        raise RuntimeError(f"{method} job {job_id} ended {state['status']}: {state.get('error')}")
    target = np.asarray(mini_scenes.render(concept), dtype=float).mean((0, 1))

    def distance(model: str) -> float:
        images = [np.asarray(generate(client, model, "a zzq", seed), dtype=float) for seed in range(8)]
        return float(np.mean([np.linalg.norm(image.mean((0, 1)) - target) for image in images]))

    return distance(MODEL), distance(state["fine_tuned_model"]), seconds


def img2img(client: httpx.Client) -> dict[str, float]:
    """Shares over 16 scenes edited with another scene's prompt: the input's background and shape colour kept at
    strength 0.2 (at the default guidance 4 and at guidance 1.5), the prompt's background drawn at strength 0.9."""
    rng = random.Random(11)
    arms = {"keep, 0.2 / guidance 4": (0.2, 4.0), "keep, 0.2 / guidance 1.5": (0.2, 1.5), "follow, 0.9": (0.9, 4.0)}
    counts = dict.fromkeys(arms, 0)
    scenes = mini_scenes.held_out_scenes()[:16]
    for i, source in enumerate(scenes):
        prompt = rng.choice([s for s in scenes if s.background not in (source.background, source.colour)])
        for arm, (strength, guidance) in arms.items():
            response = client.post(
                "/v1/images/edits",
                files={"image": ("in.png", _png(mini_scenes.render(source)), "image/png")},
                data={
                    "model": MODEL,
                    "prompt": prompt.caption,
                    "strength": str(strength),
                    "guidance_scale": str(guidance),
                    "seed": str(i),
                    "response_format": "b64_json",
                },
            )
            response.raise_for_status()
            reading = mini_scenes.read_image(_image(response.json()))
            if arm.startswith("keep"):
                counts[arm] += (reading.background, reading.colour) == (source.background, source.colour)
            else:
                counts[arm] += reading.background == prompt.background
    return {arm: count / len(scenes) for arm, count in counts.items()}


def captioning(client: httpx.Client) -> tuple[float, float]:
    """(share of the 64 held-out scenes captioned right by mini-captioner, the caption job's seconds)."""
    from genfoundry.models import mini_captioner

    scenes, images = mini_captioner.held_out_images()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, image in enumerate(images):
            archive.writestr(f"scene{i}.png", _png(image))
    dataset = client.post(
        "/v1/datasets", files={"file": ("scenes.zip", buffer.getvalue(), "application/zip")}, data={"name": "scenes"}
    )
    dataset.raise_for_status()
    dataset_id = dataset.json()["id"]
    started = time.monotonic()
    job = client.post(f"/v1/datasets/{dataset_id}/caption", json={"model": mini_captioner.MINI_CAPTIONER_ID})
    job.raise_for_status()
    while (status := client.get(f"/v1/jobs/{job.json()['id']}").json())["status"] not in ("succeeded", "failed"):
        time.sleep(0.5)
    seconds = time.monotonic() - started
    if status["status"] != "succeeded":
        raise RuntimeError(f"caption job failed: {status}")
    captions = {i["source"]: i["caption"] for i in client.get(f"/v1/datasets/{dataset_id}/items").json()["data"]}
    right = sum(mini_captioner.caption_is_right(captions[f"scene{i}.png"], s) for i, s in enumerate(scenes))
    return right / len(scenes), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1, help="images per held-out prompt")
    parser.add_argument("--steps", type=int, default=120, help="training steps for the taught word")
    parser.add_argument("--only", choices=("sd15", "captioner"), help="run one model's checks")
    args = parser.parse_args()
    home = make_home()
    with running_server(home) as url, httpx.Client(base_url=url, timeout=1800) as client:
        if args.only != "sd15":
            share, seconds = captioning(client)
            row = ("held-out scenes captioned right", f"{share:.0%} of 64 (goal >= {CAPTIONER_GOAL:.0%})")
            report(f"mini-captioner through the API (caption job {seconds:.0f} s)", [row])
        if args.only == "captioner":
            return
        rates = adherence(client, args.seeds)
        rows = [
            (f"held-out prompts: {name}", f"{rates[name]:.0%} (goal >= {goal:.0%})") for name, goal in GOALS.items()
        ]
        for method in ("lora", "dreambooth"):
            base, tuned, seconds = teach(client, method, args.steps)
            rows.append(
                (
                    f"'a zzq' after {method} ({args.steps} steps, {seconds:.0f} s)",
                    f"colour distance base {base:.1f}, tuned {tuned:.1f}: ratio {tuned / base:.2f} (goal <= 0.5)",
                )
            )
        shares = img2img(client)
        for guidance in ("4", "1.5"):
            share = shares[f"keep, 0.2 / guidance {guidance}"]
            rows.append((f"img2img strength 0.2, guidance {guidance}: keeps the input", f"{share:.0%} of 16"))
        rows.append(("img2img strength 0.9 draws the prompt's background", f"{shares['follow, 0.9']:.0%} of 16"))
    report("mini-sd15 through the API", rows)


if __name__ == "__main__":
    main()
