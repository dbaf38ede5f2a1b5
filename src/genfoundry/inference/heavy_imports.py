"""torch, transformers, diffusers and peft imported once per process, on one thread, before any engine uses them.

Two threads importing these libraries at the same time can each see the other's modules half-initialised: Python
breaks an import-lock cycle between threads by handing one of them a module still being executed, and
transformers' and diffusers' lazy top-level names (`from transformers import AutoTokenizer`) import whole
submodules on first use. At server start the router's preload, the first chat request's tokenizer and the image
engine's first load did exactly that, and a request failed with `ImportError: cannot import name 'AutoTokenizer'`.
So every path that loads or runs a model (the engines' worker threads, the request-side tokenizer, the router's
encoder, the captioner) calls `import_ml_libraries()` first: the first caller imports the modules and resolves the
lazy names below while holding `MODULE_BUILD_LOCK`; later callers find them done.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time

from genfoundry.inference.loader import MODULE_BUILD_LOCK

logger = logging.getLogger(__name__)

# Module -> the lazy names the engines, loaders and pipelines they load ask it for.
ML_NAMES: dict[str, tuple[str, ...]] = {
    "torch": ("nn",),
    "torch.nn.functional": (),
    "transformers": (
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoProcessor",
        "AutoTokenizer",
        "CLIPTextModel",
        "CLIPTextModelWithProjection",
        "CLIPTokenizer",
        "GenerationConfig",
        "LogitsProcessorList",
        "PreTrainedModel",
        "StoppingCriteriaList",
        "T5EncoderModel",
        "T5TokenizerFast",
        "TemperatureLogitsWarper",
        "TopPLogitsWarper",
    ),
    "transformers.utils.chat_parsing": ("parse_response",),
    "transformers.utils.chat_parsing.response_templates": ("load_response_template",),
    "peft": ("LoraConfig", "PeftModel", "get_peft_model", "set_peft_model_state_dict"),
    "diffusers": (
        "AutoPipelineForImage2Image",
        "AutoPipelineForInpainting",
        "AutoencoderKL",
        "DiffusionPipeline",
        "FluxPipeline",
        "StableDiffusionPipeline",
        "StableDiffusionXLPipeline",
    ),
}

_done = threading.Event()


def import_ml_libraries() -> None:
    """Import the ML libraries and resolve their lazy names, once per process; returns at once after that."""
    if _done.is_set():
        return
    with MODULE_BUILD_LOCK:
        if _done.is_set():
            return
        started = time.perf_counter()
        for module_name, names in ML_NAMES.items():
            module = importlib.import_module(module_name)
            for name in names:
                getattr(module, name)
        _done.set()
    logger.info("imported torch, transformers, peft and diffusers in %.1fs", time.perf_counter() - started)
