"""Health, readiness, metrics and docs."""

from __future__ import annotations

import httpx


def test_health_ready_docs(alice: httpx.Client) -> None:
    assert alice.get("/healthz").json() == {"status": "ok"}
    ready = alice.get("/readyz").json()
    assert ready["status"] == "ready"
    assert "tiny-sd15" in ready["models"]
    docs = alice.get("/docs")
    assert docs.status_code == 200
    spec = alice.get("/openapi.json").json()
    assert "/v1/images/generations" in spec["paths"]
    schema = spec["components"]["schemas"]["ImageGenerationRequest"]
    assert schema["examples"][0]["model"] == "tiny-sd15"


def test_metrics_count_requests_and_models(alice: httpx.Client) -> None:
    response = alice.post(
        "/v1/images/generations", json={"model": "tiny-sd15", "prompt": "x", "size": "64x64", "steps": 2}
    )
    assert response.status_code == 200
    text = alice.get("/metrics").text
    assert 'genfoundry_http_requests_total{method="POST",route="/v1/images/generations",status="200"}' in text
    assert "genfoundry_http_request_seconds_bucket" in text
    assert 'genfoundry_loaded_model_bytes{model="tiny-sd15"}' in text
    assert "genfoundry_queue_depth" in text
    assert "genfoundry_engine_images_served_total" in text
    assert 'genfoundry_loaded_adapters{model="tiny-sd15"}' in text


def test_metrics_show_the_text_engine(alice: httpx.Client) -> None:
    body = {"model": "tiny-llm", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, "seed": 1}
    response = alice.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    generated = response.json()["usage"]["completion_tokens"]
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in alice.get("/metrics").text.splitlines()
        if line and not line.startswith("#")
    }
    assert metrics['genfoundry_text_loaded_model_bytes{model="tiny-llm"}'] > 0
    assert metrics['genfoundry_text_queue_depth{model="tiny-llm"}'] == 0
    assert metrics["genfoundry_text_loaded_models"] >= 1
    assert metrics["genfoundry_text_engine_requests_served_total"] >= 1
    assert metrics["genfoundry_text_engine_tokens_generated_total"] >= generated >= 1
    assert "genfoundry_engine_images_served_total" in metrics  # the image engine's families keep their names
