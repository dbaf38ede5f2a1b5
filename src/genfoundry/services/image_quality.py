"""OpenAI's image `quality` as denoising steps: a fraction of the base's default steps, with a floor per family.

| quality                 | steps                              |
|-------------------------|------------------------------------|
| `low`                   | 1/4 of the base's default          |
| `medium`                | 1/2 of the base's default          |
| `high`, `auto`, `standard` | the base's default              |
| `hd`                    | 1.5 × the base's default           |

never fewer than the family's floor (SD 1.5 / SDXL: 10, FLUX: 1) unless the default itself is fewer, and never
more than `limits.max_steps`. An explicit `steps` wins over `quality`.
"""

from __future__ import annotations

from typing import Literal

QUALITY_FRACTIONS = {"low": 0.25, "medium": 0.5, "high": 1.0, "auto": 1.0, "standard": 1.0, "hd": 1.5}
# SD's multistep solvers give noise below ~10 steps; FLUX (schnell is distilled to 4) holds up at 1.
FAMILY_STEP_FLOORS = {"sd15": 10, "sdxl": 10, "flux": 1}


def quality_steps(quality: str | None, *, family: str, default_steps: int, max_steps: int) -> int:
    """The steps `quality` stands for on a base of `family` whose default is `default_steps`."""
    fraction = QUALITY_FRACTIONS[quality or "auto"]
    floor = min(default_steps, FAMILY_STEP_FLOORS[family])
    return max(1, min(max_steps, max(floor, round(default_steps * fraction))))


def reported_quality(quality: str | None) -> Literal["low", "medium", "high"]:
    """The quality an answer reports (OpenAI's three levels): dall-e's and `auto` resolve to what they ran."""
    if quality in ("low", "medium"):
        return quality  # type: ignore[return-value]
    return "high"
