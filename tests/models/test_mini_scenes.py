"""The synthetic scenes the mini models learn from: captions parse back, the split holds every word in training,
and the reader that measures prompt adherence reads rendered scenes exactly."""

from __future__ import annotations

import random

from genfoundry.models import mini_scenes
from genfoundry.models.mini_scenes import Scene


def test_captions_round_trip_and_only_the_vocabulary_parses() -> None:
    scene = Scene("orange", "star", "white", "top left")
    assert scene.caption == "an orange star in the top left on a white background"
    assert mini_scenes.parse_caption(scene.caption) == scene
    assert mini_scenes.parse_caption("a red circle on a blue background") == Scene("red", "circle", "blue")
    for caption in (
        "a pink circle on a blue background",
        "a red hexagon on a blue background",
        "a red circle on a red background",
        "a red circle in the middle on a blue background",
        "zzq",
    ):
        assert mini_scenes.parse_caption(caption) is None


def test_held_out_triples_are_fixed_unseen_and_their_words_are_all_trained() -> None:
    held_out, training = mini_scenes.held_out_triples(), mini_scenes.training_triples()
    assert len(held_out) == 64 and len(training) == 160
    assert not set(held_out) & set(training) and held_out == mini_scenes.held_out_triples()
    for index in range(3):
        assert {t[index] for t in training} == {t[index] for t in mini_scenes.all_triples()}


def test_the_reader_reads_every_rendered_scene() -> None:
    rng = random.Random(5)
    for _ in range(200):
        scene = mini_scenes.random_scene(rng, mini_scenes.all_triples())
        reading = mini_scenes.read_image(mini_scenes.render(scene, rng))
        assert (reading.colour, reading.background, reading.shape) == (scene.colour, scene.background, scene.shape)
    scenes = mini_scenes.held_out_scenes()[:8]
    assert mini_scenes.adherence([mini_scenes.render(s) for s in scenes], scenes) == {
        "colour": 1.0,
        "background": 1.0,
        "shape": 1.0,
    }


def test_a_plain_image_has_no_shape() -> None:
    from PIL import Image

    reading = mini_scenes.read_image(Image.new("RGB", (64, 64), mini_scenes.PALETTE["blue"]))
    assert reading == mini_scenes.Reading("blue", None, None)
