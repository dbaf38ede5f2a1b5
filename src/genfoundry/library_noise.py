"""Known-harmless output of the ML libraries, kept out of the server's, the jobs' and the CLI's output.

Each filter below matches one message we have read and traced to a cause that is expected here and that we cannot
change; every other warning and log line still shows. Progress bars are switched off with each library's own
switch: our processes write logs, where a bar is pages of carriage returns, and report progress themselves (job
events, the CLI's own bar). Nothing here imports a library: a switch runs when its library is first imported, so
a process that never loads a model never pays for importing one. `quiet_library_noise()` is called where our
processes start (the CLI, the job worker) and is safe to call again; `genfoundry -v` sets `VERBOSE_ENV` instead, so
the job processes its server starts show everything too.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

# (logger, message pattern, why it is harmless). Matched against the formatted message, from its start.
LOG_NOISE: tuple[tuple[str, str, str], ...] = (
    (
        "transformers.utils.import_utils",
        r"`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+ImageProcessorPil`",
        "no torchvision exists for this CPU build; the PIL processors are the ones we want",
    ),
    (
        "bitsandbytes.backends.cpu.ops",
        r"Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'",
        "the optional `kernels` package is not installed; bitsandbytes uses its own CPU kernel",
    ),
)

# (category, message pattern, module that warns, why it is harmless), as `warnings.filterwarnings` takes them.
WARNING_NOISE: tuple[tuple[type[Warning], str, str, str], ...] = (
    (
        FutureWarning,
        re.escape("`is_gradient_checkpointing` is deprecated and will be removed in v6."),
        r"transformers\.modeling_utils",
        "PEFT reads the old property when it wraps a model (peft/peft_model.py); nothing of ours uses it",
    ),
    (
        UserWarning,
        r"# The axis name: \w+ will not be used, since it shares the same shape constraints with another axis",
        r"torch\.onnx\._internal\.exporter\._onnx_program",
        "the router encoder's ONNX export names its batch and sequence axes, which torch.export proves equal to "
        "each other's; the exported graph keeps one name for both and runs the same",
    ),
)

# Module -> the library's own switch for its progress bars, run once that module is imported.
PROGRESS_BAR_SWITCHES: dict[str, Callable[[ModuleType], object]] = {
    "huggingface_hub.utils.tqdm": lambda module: module.disable_progress_bars(),
    "transformers.utils.logging": lambda module: module.disable_progress_bar(),
    "diffusers.utils.logging": lambda module: module.disable_progress_bar(),
}

_lock = threading.Lock()
_installed = False
VERBOSE_ENV = "GENFOUNDRY_VERBOSE"  # "1": show every library message (set by `genfoundry -v`, inherited by jobs)


class _DropKnownNoise(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self._pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self._pattern.match(record.getMessage()) is None


class _SwitchOnImport(MetaPathFinder):
    """Runs `switch(module)` right after `name` is first imported. It finds nothing itself: it asks the other
    finders for the module's spec and has the spec's loader call the switch once the module has run."""

    def __init__(self, name: str, switch: Callable[[ModuleType], object]) -> None:
        self.name = name
        self.switch = switch

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once only; and the lookup below must not come back here
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def run_then_switch(module: ModuleType) -> None:
            run_module(module)
            self.switch(module)

        # The loader is this module's own instance (file finders make one per spec), so only this import sees it.
        loader.exec_module = run_then_switch  # type: ignore[method-assign]
        return spec


def quiet_library_noise() -> None:
    """Install the filters above and the progress-bar switches (now for libraries already imported)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        for logger_name, pattern, _why in LOG_NOISE:
            logging.getLogger(logger_name).addFilter(_DropKnownNoise(pattern))
        for category, message, warning_module, _why in WARNING_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category, module=warning_module)
        for module_name, switch in PROGRESS_BAR_SWITCHES.items():
            module = sys.modules.get(module_name)
            if module is not None:
                switch(module)
            else:
                sys.meta_path.insert(0, _SwitchOnImport(module_name, switch))


def quiet_unless_verbose() -> None:
    """`quiet_library_noise()`, unless this process was started by `genfoundry -v` (`VERBOSE_ENV` is "1")."""
    if os.environ.get(VERBOSE_ENV) != "1":
        quiet_library_noise()
