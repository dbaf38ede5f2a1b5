"""Single-file checkpoints in the models folder (GENFOUNDRY_MODELS_DIR, which may be an NFS mount).

Every path a request or a catalog entry gives is relative to that folder and may not leave it: `..`, absolute
paths and symlinks that resolve outside it are refused, and only safetensors files (`.safetensors`, `.sft`) are
accepted, since a pickled checkpoint (`.ckpt`, `.pt`, `.bin`) runs code when it is loaded. Imports nothing of
ours but errors, and no ML library.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from genfoundry.errors import Invalid, NotFound

CHECKPOINT_SUFFIXES = (".safetensors", ".sft")
_PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own cap on the JSON header
SINGLE_FILE_PREFIX = "single-file:"


def resolve_model_file(models_dir: Path | None, relative: str, *, param: str = "pretrained_model") -> Path:
    """The checkpoint `relative` names inside `models_dir`, resolved; Invalid (400, naming `param`) for a path
    that is absolute, holds `..`, leaves the folder through a symlink or is not a safetensors checkpoint;
    NotFound (404) for one that does not exist; Invalid when no models folder is configured."""
    if models_dir is None:
        raise Invalid("no models folder is configured; set GENFOUNDRY_MODELS_DIR", param=param)
    if not isinstance(relative, str) or not relative.strip():
        raise Invalid("a model file path is required (relative to the models folder)", param=param)
    if "\x00" in relative or "\\" in relative:
        raise Invalid(f"{param} must be a plain path relative to the models folder", param=param)
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("~"):
        raise Invalid(f"{param} must be relative to the models folder, not an absolute path", param=param)
    if ".." in pure.parts:
        raise Invalid(f"{param} may not contain '..'; it must stay inside the models folder", param=param)
    root = Path(models_dir).expanduser().resolve()
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        raise Invalid(f"{param} points outside the models folder (through a symlink)", param=param)
    suffix = target.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        raise Invalid(
            f"{param}: {relative!r} is a pickled checkpoint, which can run code when loaded; "
            f"convert it to safetensors ({', '.join(CHECKPOINT_SUFFIXES)})",
            param=param,
        )
    if suffix not in CHECKPOINT_SUFFIXES:
        raise Invalid(
            f"{param}: {relative!r} is not a checkpoint; expected {', '.join(CHECKPOINT_SUFFIXES)}", param=param
        )
    if not target.is_file():
        raise NotFound(f"model file {relative!r} does not exist in the models folder", param=param)
    _check_safetensors(target, relative, param)
    return target


def _check_safetensors(path: Path, relative: str, param: str) -> None:
    """Invalid unless the file starts with a safetensors header (a length, then a JSON object)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        ok = 2 <= length <= min(_MAX_HEADER_BYTES, size - 8)
        if ok:
            try:
                ok = isinstance(json.loads(handle.read(length)), dict)
            except (UnicodeDecodeError, ValueError):
                ok = False
    if not ok:
        raise Invalid(f"{param}: {relative!r} is not a safetensors checkpoint", param=param)


@dataclass(frozen=True)
class SingleFileBase:
    """A base model loaded from single files: the main checkpoint (a whole SD 1.5 / SDXL pipeline, or a FLUX
    transformer), `components` (pipeline component name → checkpoint, e.g. FLUX's `vae = "ae.sft"`), and
    `config`: a diffusers pipeline folder or repo id whose configs, tokenizers and scheduler are used (and whose
    weights fill any component no file names). Paths here are absolute, already resolved."""

    checkpoint: str
    config: str
    components: dict[str, str] = field(default_factory=dict)

    def to_source(self) -> str:
        """The catalog `source` string that stands for this base (parsed back by `parse_single_file_source`)."""
        body = {
            "checkpoint": self.checkpoint,
            "config": self.config,
            "components": dict(sorted(self.components.items())),
        }
        return SINGLE_FILE_PREFIX + json.dumps(body, sort_keys=True)

    def files(self) -> list[Path]:
        return [Path(self.checkpoint), *(Path(p) for p in self.components.values())]


def parse_single_file_source(source: str) -> SingleFileBase | None:
    """The single-file base a catalog `source` stands for, or None for a folder / repo id source."""
    if not source.startswith(SINGLE_FILE_PREFIX):
        return None
    raw = json.loads(source[len(SINGLE_FILE_PREFIX) :])
    return SingleFileBase(
        checkpoint=str(raw["checkpoint"]), config=str(raw["config"]), components=dict(raw.get("components", {}))
    )


def config_source(source: str) -> str:
    """Where a base's configs live: the `config` of a single-file base, else the source itself."""
    single = parse_single_file_source(source)
    return single.config if single is not None else source


COMPONENTS = {
    "sd15": ("vae", "text_encoder"),
    "sdxl": ("vae", "text_encoder", "text_encoder_2"),
    "flux": ("vae", "text_encoder", "text_encoder_2"),
}


def check_single_file_base(model_id: str, family: str, base: SingleFileBase) -> None:
    """Invalid for a component this family has no use for, or a whole-pipeline checkpoint diffusers cannot read."""
    unknown = sorted(set(base.components) - set(COMPONENTS[family]))
    if unknown:
        raise Invalid(
            f"model {model_id!r}: {family} takes single-file components {', '.join(COMPONENTS[family])}, "
            f"not {', '.join(unknown)}"
        )
    if family != "flux" and not base.checkpoint.endswith(".safetensors"):
        # diffusers picks the reader of a whole-pipeline file by its suffix and would unpickle anything else.
        raise Invalid(f"model {model_id!r}: a {family} single-file checkpoint must end in .safetensors")
