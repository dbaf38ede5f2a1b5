"""Loads on several threads at once: a model built beside a diffusers pipeline load keeps its real weights."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from genfoundry.inference.loader import BaseModelSpec, load_pipeline
from genfoundry.router.encoder import TextEncoder, encoder_dir
from genfoundry.router.head import default_head_dir, load_head


def test_encoder_with_lora_loads_intact_beside_pipeline_loads(tiny_dir: Path) -> None:
    # diffusers patches module construction process-wide while it loads; without the shared lock, the encoder's
    # LoRA built meanwhile came out on the meta device (its weights lost, or the load failed outright).
    lora = load_head(default_head_dir()).encoder_lora
    assert lora is not None
    expected = TextEncoder(lora=lora)._load_torch(encoder_dir()).state_dict()
    spec = BaseModelSpec(id="tiny-sd15", family="sd15", source=str(tiny_dir / "sd15"))
    stop = threading.Event()
    failures: list[BaseException] = []

    def load_pipelines() -> None:
        try:
            while not stop.is_set():
                load_pipeline(spec, device="cpu", dtype="float32")
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=load_pipelines)
    thread.start()
    try:
        for _ in range(4):
            got = TextEncoder(lora=lora)._load_torch(encoder_dir()).state_dict()
            assert all(torch.equal(got[name], expected[name]) for name in expected)
    finally:
        stop.set()
        thread.join()
    assert not failures
