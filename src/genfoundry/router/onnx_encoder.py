"""The encoder on ONNX Runtime, for serving on a CPU: exported once from the torch model (LoRA merged), checked
against it, cached on disk by the hash of the weights, then loaded without torch on every later start.

`int8=True` quantizes that checked export's weights to int8 (ONNX Runtime's dynamic quantization), cached beside
it: a short prompt runs in about a quarter of the time, because a forward of a few tokens mostly reads weights. Its
activations are quantized with one scale per run, so an int8 model runs one text per run (`rows_per_run`): a text's
embedding then never depends on the other texts of its request or on their padding.

On a 2-core CPU, ONNX Runtime runs a short prompt through all-MiniLM-L6-v2 in about a third of torch's time, and
its threads sleep when idle instead of spinning, so a second thread helps a busy machine rather than stalling it
(`bench/RESULTS.md`, prompt router).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from genfoundry.inference.export_guard import EXPORT_GUARD
from genfoundry.inference.loader import MODULE_BUILD_LOCK

logger = logging.getLogger(__name__)

# Bump when the export below changes what it writes, so older cached files are not reused.
EXPORT_FORMAT = 1
# The largest difference allowed between the exported model's token embeddings and torch's on the check inputs.
MAX_EXPORT_DIFFERENCE = 1e-3
# The least cosine allowed between the int8 model's mean-pooled embeddings and the float32 export's on the check
# inputs: a guard against a quantization gone wrong; what int8 does to a head's accuracy is measured by the bench.
MIN_INT8_COSINE = 0.9
_MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


def export_key(model_dir: Path, lora_file: Path | None) -> str:
    """A hash of everything the exported model depends on: the weights and config, the LoRA, the export format."""
    digest = hashlib.sha256(f"genfoundry-encoder-onnx-{EXPORT_FORMAT}".encode())
    for path in [model_dir / name for name in _MODEL_FILES] + ([lora_file] if lora_file is not None else []):
        if not path.exists():
            continue
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]


class OnnxEncoderModel:
    """An ONNX Runtime session of the encoder: (input_ids, attention_mask) → token embeddings, on the CPU.

    `rows_per_run` is 1 for an int8 model (see the module docstring), None when any batch may run at once."""

    def __init__(self, model: bytes | Path, *, threads: int | None = None, int8: bool = False) -> None:
        import onnxruntime as ort

        self.rows_per_run = 1 if int8 else None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Idle pool threads sleep: spinning ones take the cores other work on a small machine is waiting for.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def hidden_states(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        return np.asarray(self.session.run(None, feed)[0])


def load_or_export(
    key: str,
    cache_dir: Path | None,
    load_torch_model: Callable[[], Any],
    check_ids: list[list[int]],
    *,
    threads: int | None,
    int8: bool = False,
) -> OnnxEncoderModel:
    """The cached export for `key` when there is one (torch is not touched); else export the model that
    `load_torch_model` loads, check it against torch on `check_ids` and cache it. With `int8`, the same for the
    int8 quantization of that export, checked against it. Raises ValueError when the export does not reproduce
    torch, or the quantization the export."""
    cached = cache_dir / f"{key}{'-int8' if int8 else ''}.onnx" if cache_dir is not None else None
    runtime = _load_cached(cached, threads=threads, int8=int8)
    if runtime is not None:
        return runtime
    if int8:
        full_file = cache_dir / f"{key}.onnx" if cache_dir is not None else None
        full = _load_cached(full_file, threads=threads, int8=False)
        if full is not None and full_file is not None:
            full_data = full_file.read_bytes()
        else:
            full_data, full = _checked_export(load_torch_model, check_ids, threads=threads)
            if full_file is not None:
                write_atomically(full_file, full_data)
        with MODULE_BUILD_LOCK:  # its first call imports onnx's quantization tools: no import beside another load
            data = quantize_int8(full_data)
        runtime = OnnxEncoderModel(data, threads=threads, int8=True)
        cosine = min_pooled_cosine(full, runtime, check_ids)
        if cosine < MIN_INT8_COSINE:
            raise ValueError(
                f"the int8 encoder's embeddings differ from float32's (cosine {cosine:.3f}, at least "
                f"{MIN_INT8_COSINE} allowed); set router.int8_encoder to false to serve it in float32"
            )
    else:
        data, runtime = _checked_export(load_torch_model, check_ids, threads=threads)
    if cached is not None:
        write_atomically(cached, data)
    return runtime


def _load_cached(path: Path | None, *, threads: int | None, int8: bool) -> OnnxEncoderModel | None:
    if path is None or not path.exists():
        return None
    try:
        return OnnxEncoderModel(path, threads=threads, int8=int8)
    except Exception as exc:  # a truncated or foreign file: make it again
        logger.warning("cached encoder export %s does not load (%s); exporting again", path, exc)
        return None


def _checked_export(
    load_torch_model: Callable[[], Any], check_ids: list[list[int]], *, threads: int | None
) -> tuple[bytes, OnnxEncoderModel]:
    model = load_torch_model()
    # torch.export traces with torch patched process-wide (as module loading does): a model built, trained or run on
    # another thread meanwhile failed inside torch (KeyError 'custom'), so the export waits for the engines' runs
    # in progress (export_guard.py) and holds the build lock.
    with EXPORT_GUARD.exporting(), MODULE_BUILD_LOCK:
        data = export(model)
    runtime = OnnxEncoderModel(data, threads=threads)
    difference = max_difference(model, runtime, check_ids)
    if difference > MAX_EXPORT_DIFFERENCE:
        raise ValueError(
            f"the ONNX export of the encoder differs from torch by {difference:.2e} (at most "
            f"{MAX_EXPORT_DIFFERENCE} allowed); set router.encoder_backend to 'torch' to serve it with torch"
        )
    return data, runtime


class _NoPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_int8(model: bytes) -> bytes:
    """`model` with its MatMul weights in int8 and activations quantized per run (ONNX Runtime's dynamic
    quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs on the root logger that static models should be pre-processed; this one is dynamic.
    hint = _NoPreprocessingHint()
    logging.getLogger().addFilter(hint)
    try:
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder) / "float32.onnx", Path(folder) / "int8.onnx"
            source.write_bytes(model)
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
            return target.read_bytes()
    finally:
        logging.getLogger().removeFilter(hint)


def min_pooled_cosine(reference: OnnxEncoderModel, other: OnnxEncoderModel, batches: Iterable[list[int]]) -> float:
    """The least cosine between the two models' mean-pooled embeddings of each of `batches`, one text per run."""
    cosines = []
    for tokens in batches:
        ids = np.asarray([tokens], dtype=np.int64)
        mask = np.ones_like(ids)
        a, b = reference.hidden_states(ids, mask).mean(axis=1)[0], other.hidden_states(ids, mask).mean(axis=1)[0]
        cosines.append(float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)))
    return min(cosines)


def export(model: Any) -> bytes:
    """The encoder as an ONNX model (torch.export based exporter), batch and sequence length dynamic."""
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return hidden

    wrapper = TokenEmbeddings(model).eval()
    example = (torch.tensor([[101, 7592, 2045, 102], [101, 1037, 102, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=model.config.max_position_embeddings)
    # The exporter logs a warning per torchvision operator it cannot register; torchvision is not used here.
    exporter_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        # Its deprecation and axis-naming warnings are about the exporter's internals, not this model.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                example,
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_shapes=({0: batch, 1: sequence}, {0: batch, 1: sequence}),
                dynamo=True,
                optimize=True,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    assert program is not None
    data: bytes = program.model_proto.SerializeToString()
    return data


def max_difference(model: Any, runtime: OnnxEncoderModel, batches: Iterable[list[int]]) -> float:
    """The largest absolute difference between torch's and the export's embeddings of real (unpadded) tokens."""
    import torch

    ids_list = list(batches)
    width = max(len(ids) for ids in ids_list)
    ids = np.zeros((len(ids_list), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, tokens in enumerate(ids_list):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    with torch.inference_mode():
        expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    got = runtime.hidden_states(ids, mask)
    return float((np.abs(got - expected.float().numpy()) * mask[..., None]).max())


def write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
