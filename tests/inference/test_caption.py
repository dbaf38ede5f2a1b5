"""Captioning on real tiny random-weight captioners (Florence-2 and BLIP) built in code, plus trigger words and the
caption cache."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from genfoundry.errors import Invalid, ModelUnavailable
from genfoundry.inference.caption import (
    DEFAULT_CAPTIONER_ID,
    CaptionCache,
    Captioner,
    CaptionerSpec,
    apply_trigger_word,
    caption_with_cache,
    load_captioner_catalog,
)
from genfoundry.models.tiny_captioner import (
    TINY_CAPTIONER_ID,
    build_tiny_captioner,
    ensure_tiny_captioner,
    make_florence2_tokenizer,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-models dir holding the tiny captioner, built once for this module."""
    root = tmp_path_factory.mktemp("tiny-captioner")
    folder, built = ensure_tiny_captioner(root)
    assert built and (folder / "config.json").exists()
    return root


@pytest.fixture(scope="module")
def captioner(tiny_dir: Path) -> Captioner:
    return Captioner(load_captioner_catalog(None, tiny_dir)[TINY_CAPTIONER_ID])


def make_images(n: int = 8) -> list[Image.Image]:
    """Small 40x30 images that differ: solid colours and horizontal / vertical gradients."""
    images = []
    ramp = np.linspace(0, 255, 40, dtype=np.uint8)
    for i in range(n):
        pixels = np.zeros((30, 40, 3), dtype=np.uint8)
        pixels[..., i % 3] = 30 * i + 20
        if i % 2:
            pixels[..., (i + 1) % 3] = ramp[None, :]
        if i % 4 == 2:
            pixels[..., (i + 2) % 3] = ramp[:30, None]
        images.append(Image.fromarray(pixels))
    return images


def image_hash(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def test_catalog_lists_captioners_and_the_tiny_one_only_when_built(tiny_dir: Path, tmp_path: Path) -> None:
    catalog = load_captioner_catalog(None, tiny_dir)
    assert {"florence-2-base", "florence-2-large", "blip-base", "blip-large", TINY_CAPTIONER_ID} <= set(catalog)
    assert DEFAULT_CAPTIONER_ID in catalog
    assert catalog["florence-2-base"].source == "florence-community/Florence-2-base"
    assert catalog["florence-2-base"].default_prompt == "<DETAILED_CAPTION>"
    assert catalog["blip-base"].kind == "blip"
    assert catalog[TINY_CAPTIONER_ID].source == str(tiny_dir / "captioner")
    assert TINY_CAPTIONER_ID not in load_captioner_catalog(None, tmp_path)
    with pytest.raises(Invalid, match="kind"):
        CaptionerSpec(id="x", kind="gpt", source="a/b")


def test_tokenizer_knows_normal_words() -> None:
    tokenizer = make_florence2_tokenizer()
    ids = tokenizer("a photo of a cat", add_special_tokens=False).input_ids
    assert tokenizer.unk_token_id not in ids and len(ids) <= 6  # real merges, not one token per byte
    assert tokenizer.decode(ids) == "a photo of a cat"
    assert tokenizer.image_token == "<image>"


def test_one_batch_of_8_gives_8_captions_that_depend_on_the_image(captioner: Captioner) -> None:
    images = make_images(8)
    captions = captioner.caption(images, max_new_tokens=16)
    assert len(captions) == 8
    assert all(isinstance(c, str) and c and c == c.strip() for c in captions)
    assert not any("<s>" in c or "</s>" in c or "<pad>" in c for c in captions)
    assert len(set(captions)) >= 6  # random weights, but the image drives the output


def test_batched_equals_one_at_a_time(captioner: Captioner) -> None:
    images = make_images(8)
    batched = captioner.caption(images, max_new_tokens=16)
    # Same prompt for every image and fixed-size pixel input: no padding anywhere, so the batch is exact.
    assert [captioner.caption([image], max_new_tokens=16)[0] for image in images] == batched


def test_caption_batched_splits_and_reports_progress(captioner: Captioner, monkeypatch: pytest.MonkeyPatch) -> None:
    images = make_images(7)
    expected = captioner.caption(images, max_new_tokens=8)
    sizes: list[int] = []
    original = Captioner.caption

    def spy(self: Captioner, batch: Any, **kwargs: Any) -> list[str]:
        sizes.append(len(batch))
        return original(self, batch, **kwargs)

    monkeypatch.setattr(Captioner, "caption", spy)
    progress: list[tuple[int, int]] = []
    captions = captioner.caption_batched(
        images, batch_size=3, max_new_tokens=8, on_progress=lambda d, t: progress.append((d, t))
    )
    assert captions == expected
    assert sizes == [3, 3, 1]
    assert progress == [(3, 7), (6, 7), (7, 7)]
    with pytest.raises(Invalid):
        captioner.caption_batched(images, batch_size=0)


def test_deterministic_build_and_load(tiny_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_captioner(tmp_path / "again", seed=0)
    original = tiny_dir / "captioner"
    names = sorted(p.name for p in original.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert all((original / n).read_bytes() == (again / n).read_bytes() for n in names)
    images = make_images(4)
    spec = load_captioner_catalog(None, tiny_dir)[TINY_CAPTIONER_ID]
    first = Captioner(spec).caption(images, max_new_tokens=12)
    copy = Captioner(CaptionerSpec(id="copy", kind="florence2", source=str(again)))
    assert copy.caption(images, prompt=spec.default_prompt, max_new_tokens=12) == first
    other_seed = build_tiny_captioner(tmp_path / "seed1", seed=1)
    assert (other_seed / "model.safetensors").read_bytes() != (original / "model.safetensors").read_bytes()


def test_prompts(captioner: Captioner) -> None:
    images = make_images(2)
    assert captioner.resolved_prompt(None) == "<DETAILED_CAPTION>"
    assert captioner.resolved_prompt("<CAPTION>") == "<CAPTION>"
    assert all(captioner.caption(images, prompt="<MORE_DETAILED_CAPTION>", max_new_tokens=6))
    assert all(captioner.caption(images, prompt="what is in the picture", max_new_tokens=6))
    with pytest.raises(Invalid, match="not a captioning task"):
        captioner.caption(images, prompt="<OD>")
    with pytest.raises(Invalid):
        captioner.caption(images, max_new_tokens=0)
    assert captioner.caption([]) == []


def test_loads_once_under_concurrent_first_use(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captioner = Captioner(load_captioner_catalog(None, tiny_dir)[TINY_CAPTIONER_ID])
    loads = []
    original = Captioner._load

    def counting_load(self: Captioner) -> tuple[Any, Any]:
        loads.append(1)
        time.sleep(0.05)  # widen the race window
        return original(self)

    monkeypatch.setattr(Captioner, "_load", counting_load)
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(captioner.caption(make_images(2), max_new_tokens=4)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 4 and all(r == results[0] for r in results)


def test_tiny_blip_captions(tmp_path: Path) -> None:
    folder = build_tiny_captioner(tmp_path / "blip", kind="blip")
    blip = Captioner(CaptionerSpec(id="tiny-blip", kind="blip", source=str(folder), dtype="float32"))
    images = make_images(4)
    captions = blip.caption(images, max_new_tokens=10)
    assert len(captions) == 4 and all(captions)
    assert [blip.caption([image], max_new_tokens=10)[0] for image in images] == captions
    prefixed = blip.caption(images, prompt="a picture of", max_new_tokens=10)
    assert all(c.startswith("a picture of") for c in prefixed)  # BLIP continues its text prefix


def test_trigger_word_rules() -> None:
    assert apply_trigger_word("a man in a black jacket", "ohwx") == "ohwx, a man in a black jacket"
    assert apply_trigger_word("  a man  ", " ohwx ") == "ohwx, a man"
    assert apply_trigger_word("ohwx, a man", "ohwx") == "ohwx, a man"
    assert apply_trigger_word("OHWX man on a beach", "ohwx") == "OHWX man on a beach"  # case-insensitive
    assert apply_trigger_word("ohwxman on a beach", "ohwx") == "ohwx, ohwxman on a beach"  # whole word only
    assert apply_trigger_word("a photo of ohwx", "ohwx") == "ohwx, a photo of ohwx"  # only the start counts
    assert apply_trigger_word("sks dog, sitting", "sks dog") == "sks dog, sitting"
    assert apply_trigger_word("a dog", "") == "a dog"
    assert apply_trigger_word("a dog", None) == "a dog"
    assert apply_trigger_word("a dog", "   ") == "a dog"
    assert apply_trigger_word("", "ohwx") == "ohwx"
    once = apply_trigger_word("a dog", "c++")
    assert once == "c++, a dog" and apply_trigger_word(once, "c++") == once  # regex characters are literal


def test_cache_skips_the_model_on_hits(captioner: Captioner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = make_images(6)
    pairs = [(image_hash(image), image) for image in images]
    runs: list[int] = []
    original = Captioner.caption

    def spy(self: Captioner, batch: Any, **kwargs: Any) -> list[str]:
        runs.append(len(batch))
        return original(self, batch, **kwargs)

    monkeypatch.setattr(Captioner, "caption", spy)
    cache = CaptionCache(tmp_path / "cache" / "captions")
    progress: list[tuple[int, int]] = []
    first = caption_with_cache(
        captioner, pairs, cache=cache, batch_size=4, max_new_tokens=8, on_progress=lambda d, t: progress.append((d, t))
    )
    assert runs == [4, 2] and progress == [(0, 6), (4, 6), (6, 6)]
    assert first == captioner.caption(images, max_new_tokens=8)
    runs.clear()

    # A re-run, through a new cache object on the same folder (another process would do the same): zero runs.
    again = caption_with_cache(
        captioner, pairs, cache=CaptionCache(tmp_path / "cache" / "captions"), batch_size=4, max_new_tokens=8
    )
    assert again == first and runs == []

    # A second dataset with some of the same images (one repeated, given lazily) only runs the new one.
    new_image = make_images(7)[6]
    second = [pairs[0], (image_hash(new_image), lambda: new_image), pairs[0], pairs[3]]
    result = caption_with_cache(captioner, second, cache=cache, batch_size=4, max_new_tokens=8)
    assert runs == [1] and result[0] == first[0] and result[2] == first[0] and result[3] == first[3]
    runs.clear()

    caption_with_cache(captioner, pairs[:2], cache=cache, prompt="<CAPTION>", max_new_tokens=8)
    assert runs == [2]  # a different prompt misses
    runs.clear()
    other = Captioner(CaptionerSpec(id="other", kind="florence2", source=captioner.spec.source, dtype="float32"))
    caption_with_cache(other, pairs[:2], cache=cache, max_new_tokens=8)
    assert runs == [2]  # a different model id misses


def test_cache_store(tmp_path: Path) -> None:
    cache = CaptionCache(tmp_path / "c")
    assert cache.get_many([]) == {}
    cache.put_many({f"k{i}": f"caption {i}" for i in range(1200)})  # more keys than one query chunk
    found = cache.get_many([f"k{i}" for i in range(0, 1300, 2)])
    assert len(found) == 600 and found["k10"] == "caption 10"
    cache.put_many({"k10": "replaced"})
    assert CaptionCache(tmp_path / "c").get_many(["k10"]) == {"k10": "replaced"}


def test_missing_model_offline_is_model_unavailable_without_the_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, network_attempts: list[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = CaptionerSpec(id="florence-missing", kind="florence2", source="genfoundry-tests/no-such-florence")
    with pytest.raises(ModelUnavailable) as info:
        Captioner(spec).caption(make_images(1))
    assert "florence-missing" in str(info.value) and "hf download genfoundry-tests/no-such-florence" in str(info.value)
    assert "HF_HUB_OFFLINE is set and it is not in the HF cache" in str(info.value)  # the cache alone was asked
    assert network_attempts == []  # no lookup or connect that could wait on a network that is not there
    with pytest.raises(ModelUnavailable, match="does not exist"):
        Captioner(CaptionerSpec(id="gone", kind="blip", source=str(tmp_path / "nothing"))).load()
