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
