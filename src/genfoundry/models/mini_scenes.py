"""The synthetic scenes the mini models learn from: one coloured shape on a plain background, with an exact caption.

Everything about the vocabulary lives here, shared by the pretraining script, the tests, the bench and the demo:
the palette, the shapes, the caption grammar, the renderer, the split of (shape colour, shape, background) triples
into training and held-out ones, and the analysis that reads a generated image back (background colour, shape
colour, shape kind) to measure prompt adherence.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

SIZE = 64
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "orange": (245, 140, 20),
    "purple": (140, 40, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle", "star")
# Where the shape's centre lies, as a fraction of the image side.
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (0.3, 0.3),
    "top right": (0.7, 0.3),
    "bottom left": (0.3, 0.7),
    "bottom right": (0.7, 0.7),
    "center": (0.5, 0.5),
}
HELD_OUT_COUNT = 64
_SPLIT_SEED = 20261207
_CAPTION = re.compile(
    r"^an? (?P<colour>\w+) (?P<shape>\w+)(?: in the (?P<position>[a-z ]+?))? on an? (?P<background>\w+) background$"
)


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    background: str
    position: str | None = None

    @property
    def caption(self) -> str:
        where = f" in the {self.position}" if self.position else ""
        background = f"{_article(self.background)} {self.background} background"
        return f"{_article(self.colour)} {self.colour} {self.shape}{where} on {background}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def parse_caption(caption: str) -> Scene | None:
    """The scene a caption in the vocabulary describes, or None when it is not one."""
    match = _CAPTION.match(caption.strip().lower())
    if match is None:
        return None
    colour, shape, background, position = match["colour"], match["shape"], match["background"], match["position"]
    if colour not in PALETTE or background not in PALETTE or shape not in SHAPES or colour == background:
        return None
    if position is not None and position not in POSITIONS:
        return None
    return Scene(colour, shape, background, position)


def all_triples() -> list[tuple[str, str, str]]:
    """Every (shape colour, shape, background) with two different colours: 8 x 4 x 7 = 224."""
    return [(c, s, b) for c, s, b in itertools.product(PALETTE, SHAPES, PALETTE) if c != b]


def held_out_triples() -> list[tuple[str, str, str]]:
    """The 64 triples no training caption contains (fixed by a seed): prompt adherence is measured on them.

    Every colour, shape and background still occurs in training, only these combinations do not."""
    triples = all_triples()
    random.Random(_SPLIT_SEED).shuffle(triples)
    return sorted(triples[:HELD_OUT_COUNT])


def training_triples() -> list[tuple[str, str, str]]:
    held_out = set(held_out_triples())
    return [t for t in all_triples() if t not in held_out]


def random_scene(rng: random.Random, triples: list[tuple[str, str, str]], *, position_rate: float = 0.5) -> Scene:
    colour, shape, background = rng.choice(triples)
    position = rng.choice(list(POSITIONS)) if rng.random() < position_rate else None
    return Scene(colour, shape, background, position)


def _star(cx: float, cy: float, radius: float, turn: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius * 0.42
        angle = turn + i * math.pi / 5 - math.pi / 2
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def render(scene: Scene, rng: random.Random | None = None) -> Image.Image:
    """The scene as a SIZE x SIZE RGB image, drawn 4x larger and downsampled (smooth edges).

    With `rng`, the size, the exact place (within a few pixels of the named position, anywhere when none is named)
    and the rotation of stars and triangles vary; without it the scene is drawn canonically."""
    from PIL import Image, ImageDraw

    scale = 4
    side = SIZE * scale
    radius = (rng.uniform(0.2, 0.26) if rng else 0.23) * side
    if scene.position is not None:
        fx, fy = POSITIONS[scene.position]
        jitter = 0.04 if rng else 0.0
        fx += rng.uniform(-jitter, jitter) if rng else 0.0
        fy += rng.uniform(-jitter, jitter) if rng else 0.0
    else:
        low, high = 0.3, 0.7
        fx, fy = (rng.uniform(low, high), rng.uniform(low, high)) if rng else (0.5, 0.5)
    cx, cy = fx * side, fy * side
    turn = rng.uniform(-0.25, 0.25) if rng else 0.0
    image = Image.new("RGB", (side, side), PALETTE[scene.background])
    draw = ImageDraw.Draw(image)
    fill = PALETTE[scene.colour]
    if scene.shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    elif scene.shape == "square":
        half = radius * 0.88
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=fill)
    elif scene.shape == "triangle":
        corners = [
            (cx + radius * 1.1 * math.cos(turn + a), cy + radius * 1.1 * math.sin(turn + a))
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
        draw.polygon(corners, fill=fill)
    else:
        draw.polygon(_star(cx, cy, radius * 1.25, turn), fill=fill)
    return image.resize((SIZE, SIZE), Image.Resampling.BOX)


# Reading an image back.


@dataclass(frozen=True)
class Reading:
    background: str
    colour: str | None  # None: no foreground found
    shape: str | None


def nearest_colour(rgb: Any) -> str:
    import numpy as np

    names = list(PALETTE)
    table = np.array([PALETTE[n] for n in names], dtype=float)
    return names[int(np.argmin(np.linalg.norm(table - np.asarray(rgb, dtype=float), axis=1)))]


def read_image(image: Image.Image) -> Reading:
    """Background = the palette colour nearest the border's median; foreground = the pixels whose nearest palette
    colour differs from it (the largest such colour names the shape's colour); the shape is classified from the
    foreground mask's fill of its bounding box and of its convex hull."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=float)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = nearest_colour(np.median(border, axis=0))
    names = list(PALETTE)
    table = np.array([PALETTE[n] for n in names], dtype=float)
    labels = np.argmin(np.linalg.norm(pixels[:, :, None, :] - table[None, None], axis=3), axis=2)
    counts = np.bincount(labels.ravel(), minlength=len(names))
    counts[names.index(background)] = 0
    if counts.max() < 0.02 * SIZE * SIZE:
        return Reading(background, None, None)
    colour_index = int(counts.argmax())
    mask = labels == colour_index
    return Reading(background, names[colour_index], classify_shape(mask))


def classify_shape(mask: Any) -> str | None:
    """circle / square / triangle / star from a boolean mask (moments of the largest blob are not needed for one
    shape on a plain background: its fill of the bounding box and of the convex hull separate the four)."""
    import numpy as np
    from scipy.spatial import ConvexHull, QhullError

    ys, xs = np.nonzero(mask)
    if len(xs) < 12:
        return None
    area = float(len(xs))
    box = float((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
    # Pixel squares' corners, so the hull covers whole pixels as the area does.
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    try:
        hull_area = float(ConvexHull(corners).volume)
    except QhullError:
        return None
    solidity = area / hull_area
    extent = area / box
    if solidity < 0.8:
        return "star"
    if extent > 0.88:
        return "square"
    if extent > 0.68:
        return "circle"
    return "triangle"


def held_out_scenes() -> list[Scene]:
    """The 64 held-out triples as scenes, positions cycling through none and the five named ones."""
    positions = [None, *POSITIONS]
    return [Scene(c, s, b, positions[i % len(positions)]) for i, (c, s, b) in enumerate(held_out_triples())]


def adherence(images: list[Image.Image], scenes: list[Scene]) -> dict[str, float]:
    """The share of images whose shape colour, background and shape read back as their scene asks."""
    readings = [read_image(image) for image in images]
    return {
        "colour": sum(r.colour == s.colour for r, s in zip(readings, scenes, strict=True)) / len(scenes),
        "background": sum(r.background == s.background for r, s in zip(readings, scenes, strict=True)) / len(scenes),
        "shape": sum(r.shape == s.shape for r, s in zip(readings, scenes, strict=True)) / len(scenes),
    }


# The new word the demo, the bench and the tests teach mini-sd15: a concept outside the vocabulary's captions.
TAUGHT_WORD = "zzq"
TAUGHT_SCENE = Scene("yellow", "star", "purple")


def taught_word_zip(count: int = 8, *, seed: int = 3) -> bytes:
    """A ZIP dataset of `count` varied renders of TAUGHT_SCENE, each captioned "a zzq" in a same-name .txt file."""
    import io
    import zipfile

    rng = random.Random(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            png = io.BytesIO()
            render(TAUGHT_SCENE, rng).save(png, format="PNG")
            archive.writestr(f"{TAUGHT_SCENE.shape}{i}.png", png.getvalue())
            archive.writestr(f"{TAUGHT_SCENE.shape}{i}.txt", f"a {TAUGHT_WORD}")
    return buffer.getvalue()
