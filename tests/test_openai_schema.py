"""The OpenAI-schema helper itself: it finds the operation's schema, passes a conforming answer with our additive
fields, and names each violation of a non-conforming one."""

from __future__ import annotations

import pytest

from tests.openai_schema import assert_matches_openai, openai_path

ERROR = {"error": {"message": "No file 'file-x'", "type": "invalid_request_error", "param": "file_id", "code": None}}


def test_concrete_paths_map_to_openai_templates() -> None:
    assert openai_path("/v1/models/tiny-sd") == "/models/{model}"
    assert openai_path("/v1/fine_tuning/jobs/ftjob-1/events?limit=2") == "/fine_tuning/jobs/{fine_tuning_job_id}/events"
    with pytest.raises(AssertionError, match="no path '/datasets'"):
        openai_path("/v1/datasets")


def test_conforming_answers_pass_with_additive_fields() -> None:
    model = {"id": "tiny-sd", "object": "model", "created": 1, "owned_by": "genfoundry", "capabilities": ["images"]}
    assert_matches_openai({"object": "list", "data": [model]}, "GET", "/v1/models")
    assert_matches_openai(ERROR, "GET", "/v1/files/file-x", 404)
    assert_matches_openai("raw bytes", "GET", "/v1/files/file-x/content")


def test_each_violation_is_named_with_its_place() -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {}}],
    }
    with pytest.raises(AssertionError, match="at /choices/0: 'finish_reason' is a required property"):
        assert_matches_openai(chunk, "POST", "/v1/chat/completions", stream_event=True)
    with pytest.raises(AssertionError, match="at /error: 'param' is a required property"):
        assert_matches_openai(
            {"error": {"message": "m", "type": "t", "code": None}}, "POST", "/v1/chat/completions", 400
        )


def test_openapi_3_0_nullable_reads_as_or_null() -> None:
    choice = {"index": 0, "delta": {"content": "hi"}, "finish_reason": None}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    assert_matches_openai(chunk, "POST", "/v1/chat/completions", stream_event=True)
    with pytest.raises(AssertionError, match="at /choices/0/finish_reason"):
        assert_matches_openai(
            {**chunk, "choices": [{**choice, "finish_reason": "done"}]},
            "POST",
            "/v1/chat/completions",
            stream_event=True,
        )


def test_openapi_3_0_boolean_exclusive_minimum_reads_as_a_number() -> None:
    job = {
        "id": "ftjob-1",
        "object": "fine_tuning.job",
        "created_at": 1,
        "error": None,
        "fine_tuned_model": None,
        "finished_at": None,
        "hyperparameters": {},
        "model": "m",
        "organization_id": "o",
        "result_files": [],
        "status": "queued",
        "trained_tokens": None,
        "training_file": "file-1",
        "validation_file": None,
        "seed": 1,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 0.5}}},
    }
    assert_matches_openai(job, "GET", "/v1/fine_tuning/jobs/ftjob-1")
    zero = {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 0}}}
    with pytest.raises(AssertionError, match="learning_rate_multiplier"):
        assert_matches_openai({**job, "method": zero}, "GET", "/v1/fine_tuning/jobs/ftjob-1")
