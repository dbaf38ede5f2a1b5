"""SFT jobs through the services (in-process, thread executor): checks before queueing, the job's events, the
adapter and its checkpoints registered as text adapters, cancel and resume, and a chat with the result."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from genfoundry.config import JobSettings, Settings
from genfoundry.db.tables import Job, JobEvent
from genfoundry.errors import Conflict, GenfoundryError, Invalid, NotFound
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import jobs as jobs_repo
from genfoundry.repo import users as users_repo
from genfoundry.schemas import ChatCompletionRequest, FineTuningJobCreate
from genfoundry.services import Services, build_services
from genfoundry.services.fine_tuning.sft import SFT_KIND, sft_params
from genfoundry.text.formats import TextFormat
from tests.conftest import make_home


@pytest.fixture(scope="module")
def services(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home = make_home(tmp_path_factory.mktemp("sft-service"), tiny_dir)
    built = build_services(Settings(home=home, jobs=JobSettings(executor="thread")))
    yield built
    built.close()


@pytest.fixture(scope="module")
def owner(services: Services) -> str:
    with services.sessions() as session:
        user_id = users_repo.create_user(session=session, name="alice").id
        session.commit()
    return str(user_id)


def upload(services: Services, owner: str, path: Path) -> str:
    return str(services.datasets.create_from_jsonl(owner_id=owner, name=path.stem, path=path, filename=path.name).id)


@pytest.fixture(scope="module")
def dataset_id(
    services: Services, owner: str, tmp_path_factory: pytest.TempPathFactory, make_pairs: Callable[..., Path]
) -> str:
    return upload(services, owner, make_pairs(tmp_path_factory.mktemp("data") / "pairs.jsonl", 16))


def body(dataset: str, model: str = "tiny-llm", **hyper: Any) -> FineTuningJobCreate:
    hyperparameters = {"max_steps": 4, "batch_size": 4, "rank": 4, "learning_rate": 3e-3, **hyper}
    return FineTuningJobCreate.model_validate(
        {
            "model": model,
            "training_file": dataset,
            "seed": 3,
            "suffix": "uml",
            "method": {"type": "sft", "sft": {"hyperparameters": hyperparameters}},
        }
    )


def wait(services: Services, job_id: str, done: Callable[[Job], bool], timeout: float = 300) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.sessions() as session:
            job = jobs_repo.get_job(session=session, job_id=job_id)
        assert job is not None
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the state asked for")


def job_events(services: Services, job_id: str, kind: str) -> list[JobEvent]:
    with services.sessions() as session:
        page, _more = jobs_repo.list_events(session=session, job_id=job_id, after=None, limit=1000, types=(kind,))
    return list(page)


def ended(job: Job) -> bool:
    return job.status not in ("queued", "running")


def test_a_job_trains_registers_the_adapter_and_chats(services: Services, owner: str, dataset_id: str) -> None:
    job = services.fine_tuning.create(
        owner_id=owner,
        body=body(dataset_id, validation_fraction=0.25, checkpoint_every_n_steps=2, eval_every_n_steps=2),
    )
    assert job.kind == SFT_KIND and job.params["hyperparameters"]["seed"] == 3
    job = wait(services, job.id, ended)
    assert job.status == "succeeded", job.error
    adapter_id = job.result["fine_tuned_model"]
    assert job.result["steps"] == 4 and 0 <= job.result["token_accuracy"] <= 1 and job.result["eval_loss"] > 0

    metrics = [e.data for e in job_events(services, job.id, "metrics")]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all({"loss", "lr", "it_per_s", "tokens_per_s", "total"} <= set(m) for m in metrics)
    assert [m["step"] for m in metrics if "eval_loss" in m] == [2, 4]
    checkpoints = [e.data for e in job_events(services, job.id, "checkpoint")]
    assert [c["step"] for c in checkpoints] == [2, 4]
    assert all("eval_loss" in c and c["adapter_id"] for c in checkpoints)

    with services.sessions() as session:
        mine = {a.id: a for a in adapters_repo.list_adapters(session=session, owner_id=owner)}
    assert {adapter_id, *(c["adapter_id"] for c in checkpoints)} <= set(mine)
    adapter = mine[adapter_id]
    assert (adapter.family, adapter.base_id, adapter.source_format, adapter.rank) == ("text", "tiny-llm", "peft", 4)
    assert adapter.name == "ft-tiny-llm-uml" and adapter.tags == {"job": job.id}
    fmt = TextFormat.read(services.store.local_path(f"adapters/{adapter_id}"))
    assert fmt.prompt_format == "chat_template" and fmt.chat_template and "<|im_start|>" in fmt.chat_template

    request = ChatCompletionRequest.model_validate(
        {"model": adapter_id, "messages": [{"role": "user", "content": "A user logs in"}], "max_tokens": 8, "seed": 1}
    )
    answer = services.text.chat_sync(owner, request)
    assert answer.model == adapter_id and answer.usage.completion_tokens >= 1


def test_cancel_then_resume_finishes_from_the_checkpoint(services: Services, owner: str, dataset_id: str) -> None:
    job = services.fine_tuning.create(owner_id=owner, body=body(dataset_id, max_steps=40, checkpoint_every_n_steps=2))
    wait(services, job.id, lambda j: j.progress_step >= 2 or ended(j))
    assert services.jobs.cancel(job.id)
    cancelled = wait(services, job.id, ended)
    assert cancelled.status == "cancelled" and cancelled.checkpoint is not None
    stopped_at = cancelled.progress_step
    services.jobs.resume(cancelled)
    done = wait(services, job.id, ended)
    assert done.status == "succeeded", done.error
    steps = [e.data["step"] for e in job_events(services, job.id, "metrics")]
    assert steps[-1] == 40 and len(steps) < 40 + stopped_at  # resumed from its checkpoint, not from step 0
    assert any("resumed from step_" in e.message for e in job_events(services, job.id, "log"))


@pytest.mark.parametrize(
    ("model", "hyper", "error", "param"),
    [
        ("tiny-sd15", {}, Invalid, "model"),  # an image model
        ("no-such-llm", {}, NotFound, "model"),
        ("tiny-llm", {"rank": 0}, Invalid, "rank"),
        ("tiny-llm", {"quantization": "8bit"}, Invalid, "quantization"),
        ("tiny-llm", {"max_seq_length": 1}, Invalid, "max_seq_length"),
        ("tiny-llm", {"n_epochs": 2}, Invalid, "n_epochs"),  # with max_steps
        ("tiny-llm", {"learning_rate_multiplier": -1.0}, Invalid, "learning_rate_multiplier"),
    ],
)
def test_bad_requests_are_refused_before_queueing(
    services: Services,
    owner: str,
    dataset_id: str,
    model: str,
    hyper: dict[str, Any],
    error: type[GenfoundryError],
    param: str,
) -> None:
    with pytest.raises(error) as info:
        services.fine_tuning.create(owner_id=owner, body=body(dataset_id, model=model, **hyper))
    assert info.value.param == param


def test_bad_datasets_are_refused(services: Services, owner: str, dataset_id: str, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "draw a cat", "label": "image"}\n')
    with pytest.raises(Invalid) as info:
        services.fine_tuning.create(owner_id=owner, body=body(upload(services, owner, labels)))
    assert info.value.param == "training_file" and "classification" in info.value.message
    with pytest.raises(NotFound) as missing:
        services.fine_tuning.create(owner_id=owner, body=body("ds_nope"))
    assert missing.value.param == "training_file"
    both = body(dataset_id, validation_fraction=0.2).model_copy(update={"validation_file": dataset_id})
    with pytest.raises(Invalid) as info:
        services.fine_tuning.create(owner_id=owner, body=both)
    assert info.value.param == "validation_fraction"
    with services.sessions() as session:
        bob = users_repo.create_user(session=session, name="bob").id
        session.commit()
    with pytest.raises(NotFound):  # another user's dataset does not exist
        services.fine_tuning.create(owner_id=bob, body=body(dataset_id))


def test_hyperparameter_names_and_openai_aliases() -> None:
    with pytest.raises(ValidationError):  # an unknown name is a 400 naming it at the API
        body("ds_x", learning_rat=1)
    params = sft_params(body("ds_x", learning_rate_multiplier=2.0, n_epochs="auto", batch_size="auto"))
    assert params["learning_rate"] == pytest.approx(6e-3) and "n_epochs" not in params and "batch_size" not in params
    legacy = FineTuningJobCreate.model_validate(  # OpenAI's top-level hyperparameters; method settings win
        {
            "model": "tiny-llm",
            "training_file": "ds_x",
            "method": {"type": "sft", "sft": {"hyperparameters": {"batch_size": 2}}},
            "hyperparameters": {"n_epochs": 2, "batch_size": 8},
        }
    )
    assert sft_params(legacy) == {"n_epochs": 2, "batch_size": 2}
    image_only = FineTuningJobCreate.model_validate(
        {"model": "tiny-llm", "training_file": "ds_x", "method": {"type": "sft"}, "hyperparameters": {"resolution": 64}}
    )
    with pytest.raises(Invalid) as info:
        sft_params(image_only)
    assert info.value.param == "resolution"


def test_conflict_on_a_dataset_that_is_not_ready(services: Services, owner: str, dataset_id: str) -> None:
    from genfoundry.repo import datasets as datasets_repo

    with services.sessions() as session:
        dataset = datasets_repo.get_dataset(session=session, dataset_id=dataset_id)
        assert dataset is not None
        dataset.status = "captioning"
        session.commit()
    try:
        with pytest.raises(Conflict):
            services.fine_tuning.create(owner_id=owner, body=body(dataset_id))
    finally:
        with services.sessions() as session:
            dataset = datasets_repo.get_dataset(session=session, dataset_id=dataset_id)
            assert dataset is not None
            dataset.status = "ready"
            session.commit()
