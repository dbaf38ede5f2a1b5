"""The fine-tuning methods by `method.type`, and the one job function every fine-tuning kind runs.

Adding a method: a `FineTuningMethod` subclass in its own module (plus its recipe), listed in METHODS (and, for
the API, its name and settings in `schemas/fine_tuning.py`).
"""

from __future__ import annotations

from typing import Any

from genfoundry.errors import Invalid
from genfoundry.jobs.context import JobContext
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.runner import JobRunner
from genfoundry.schemas.fine_tuning import SFT_ALIAS, SUPERVISED
from genfoundry.services.fine_tuning.classifier import ClassifierMethod
from genfoundry.services.fine_tuning.image import DreamBoothMethod, LoraMethod
from genfoundry.services.fine_tuning.method import FineTuningMethod
from genfoundry.services.fine_tuning.sft import SftMethod

METHODS: dict[str, type[FineTuningMethod]] = {
    method.name: method for method in (LoraMethod, DreamBoothMethod, ClassifierMethod, SftMethod)
}
FINE_TUNING_KINDS = tuple(dict.fromkeys(method.kind for method in METHODS.values()))
_RUN = "genfoundry.services.fine_tuning.registry:run_fine_tuning_job"


def public_method_name(name: str) -> str:
    """A stored `method` under its name today (jobs stored before "supervised" say "sft")."""
    return SUPERVISED if name == SFT_ALIAS else name


def method_for(name: str, env: JobEnv) -> FineTuningMethod:
    """The method `name` (or its alias) over `env`; Invalid naming the known ones otherwise."""
    name = public_method_name(name)
    if name not in METHODS:
        raise Invalid(f"method.type {name!r} is not one of {', '.join(METHODS)}", param="method.type")
    return METHODS[name](env)


def register_fine_tuning_jobs(runner: JobRunner) -> None:
    for kind in FINE_TUNING_KINDS:
        methods = [method for method in METHODS.values() if method.kind == kind]
        runner.register(kind, _RUN, resumable=all(method.resumable for method in methods))


def run_fine_tuning_job(ctx: JobContext) -> dict[str, Any]:
    """Every fine-tuning kind's job function: the job's method runs it (jobs stored before `method` was: lora)."""
    return method_for(str(ctx.params.get("method", "lora")), ctx.env).run(ctx)
