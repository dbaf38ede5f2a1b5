"""Job event streams: a reconnecting client's `Last-Event-ID` picks up after that event; an id the job never sent
replays the job from its first event (the schema cannot rule it out, so the route takes it); a malformed one is
a 400 the schema announces. An unknown `after` stays a 400."""

from __future__ import annotations

import re

import httpx

from tests.helpers import assert_error, wait_for_job


def finished_job(client: httpx.Client) -> str:
    """A dataset download whose only URL the SSRF guard refuses: a job with a few events that ends at once."""
    response = client.post("/v1/datasets/from-urls", json={"name": "events", "urls": ["http://127.0.0.1:9/x.png"]})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    assert wait_for_job(client, job_id)["status"] == "failed"
    return job_id


def streamed_ids(client: httpx.Client, job_id: str, last_event_id: str | None = None) -> list[str]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with client.stream("GET", f"/v1/jobs/{job_id}/events", params={"stream": "true"}, headers=headers) as response:
        assert response.status_code == 200, response.read()
        text = response.read().decode()
    assert text.rstrip().endswith("data: [DONE]")
    return re.findall(r"^id: (ev_\d+)$", text, flags=re.MULTILINE)


def test_last_event_id_resumes_or_replays(alice: httpx.Client) -> None:
    job_id, other_job = finished_job(alice), finished_job(alice)
    every = streamed_ids(alice, job_id)
    assert len(every) >= 2
    assert every == [event["id"] for event in alice.get(f"/v1/jobs/{job_id}/events").json()["data"]]

    assert streamed_ids(alice, job_id, every[0]) == every[1:]
    assert streamed_ids(alice, job_id, every[-1]) == []
    # Another job's event and an id never sent: the whole job again, not a refused stream.
    assert streamed_ids(alice, job_id, streamed_ids(alice, other_job)[0]) == every
    assert streamed_ids(alice, job_id, "ev_99999999999") == every
    page = alice.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "ev_99999999999"}).json()
    assert [event["id"] for event in page["data"]] == every

    # Not an event id at all: refused, as the header's pattern in the schema says.
    assert_error(alice.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "ev_x"}), 400, param="last-event-id")
    header = next(
        p
        for p in alice.get("/openapi.json").json()["paths"]["/v1/jobs/{job_id}/events"]["get"]["parameters"]
        if p["name"] == "last-event-id"
    )
    assert header["in"] == "header"
    assert re.fullmatch(header["schema"]["anyOf"][0]["pattern"], "ev_12")
    assert not re.fullmatch(header["schema"]["anyOf"][0]["pattern"], "ev_x")
    # A page cursor must be one of the job's events.
    assert_error(alice.get(f"/v1/jobs/{job_id}/events", params={"after": "ev_99999999999"}), 400, param="after")
    assert_error(alice.get(f"/v1/jobs/{job_id}/events", params={"after": "garbage"}), 400, param="after")
