"""The kohya config's default resolution comes from the images: the largest 64-px step most of them reach."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from genfoundry.datasets.kohya import KohyaOptions, kohya_dataset_config, resolution_from_images


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([(300, 300)] * 3 + [(2000, 2000)], 256),  # half reach only 300 px: 256, not 1024
        ([(512, 512), (640, 480), (800, 600), (300, 200)], 512),  # √(640·480) = 554 is the median side
        ([(3000, 2000)] * 5, 1024),  # large photos are scaled down to 1024, never trained at 2449
        ([(48, 32)] * 4, 64),  # smaller than any bucket: the smallest kohya takes
        ([], 1024),
    ],
)
def test_resolution_from_images(sizes: list[tuple[int, int]], expected: int) -> None:
    resolution, why = resolution_from_images(sizes)
    assert resolution == expected
    assert why.startswith(f"{expected} ")


def test_a_resolution_from_the_data_is_explained_in_the_file(tmp_path: Path) -> None:
    text = kohya_dataset_config(tmp_path, KohyaOptions(), image_sizes=[(400, 400)] * 3)
    assert text.startswith("# resolution 384 from the 3 images")
    assert "so most are not upscaled" in text.splitlines()[0]
    assert tomllib.loads(text)["datasets"][0]["resolution"] == 384


def test_an_asked_resolution_is_kept_without_a_comment(tmp_path: Path) -> None:
    text = kohya_dataset_config(tmp_path, KohyaOptions(resolution=768), image_sizes=[(64, 64)])
    assert not text.startswith("#")
    assert tomllib.loads(text)["datasets"][0]["resolution"] == 768
