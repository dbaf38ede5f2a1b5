"""The server's job endpoints over HTTP, for the CLI's `train` and `jobs` commands."""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from genfoundry.client import raise_for_error
from genfoundry.errors import GenfoundryError

DONE = "[DONE]"


class ServerUnreachable(GenfoundryError):
    """No answer from the server: refused, timed out, or the connection dropped for good."""


@dataclass
class SseMessage:
    id: str | None
    event: str
    data: str


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Server-Sent Events messages from the stream's lines; comments (keep-alives) are skipped."""
    event_id: str | None = None
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event_id, event, "\n".join(data))
            event_id, event, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value


def _decode_event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise GenfoundryError(f"the server sent an event that is not a JSON object: {data[:200]!r}")
    return event


class JobsClient:
    """Jobs, fine-tuning jobs and their events on a running server; errors come back as GenfoundryError."""

    def __init__(
        self,
        server: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        stream_read_timeout: float = 60.0,
        max_reconnects: int = 10,
    ) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=httpx.Timeout(timeout, connect=10))
        self._stream_timeout = httpx.Timeout(10, read=stream_read_timeout)
        self.max_reconnects = max_reconnects

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        reason = str(exc) or type(exc).__name__
        return ServerUnreachable(
            f"cannot reach the genfoundry server at {self.server} ({reason}): start it with `make serve` (or "
            "`genfoundry serve`), or name a running one with --server URL / GENFOUNDRY_SERVER"
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        raise_for_error(response)
        return response

    def create_fine_tuning_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/fine_tuning/jobs; returns the fine_tuning.job object."""
        result: dict[str, Any] = self._request("POST", "/v1/fine_tuning/jobs", json=body).json()
        return result

    def fine_tuning_job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/fine_tuning/jobs/{job_id}").json()
        return result

    def list_jobs(self, *, limit: int = 20, after: str | None = None, kind: str | None = None) -> dict[str, Any]:
        """The caller's jobs of every kind (or one), newest first: {data, has_more}."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        if kind is not None:
            params["kind"] = kind
        result: dict[str, Any] = self._request("GET", "/v1/jobs", params=params).json()
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/jobs/{job_id}").json()
        return result

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/v1/jobs/{job_id}/cancel").json()
        return result

    def resume(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/v1/jobs/{job_id}/resume").json()
        return result

    def log(self, job_id: str, *, tail: int) -> str:
        """The job's last `tail` log and status lines, as the server formats them."""
        return self._request("GET", f"/v1/jobs/{job_id}/log", params={"tail": tail}).text

    def events(self, job_id: str, *, after: str | None = None, limit: int = 1000) -> dict[str, Any]:
        """One page of events, oldest first: {data, has_more}."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        result: dict[str, Any] = self._request("GET", f"/v1/jobs/{job_id}/events", params=params).json()
        return result

    def stream_events(self, job_id: str, *, after: str | None = None) -> Generator[dict[str, Any], None, None]:
        """Events after `after`, oldest first, live from the SSE stream until the job has ended and every event
        was sent. A dropped connection is reopened with Last-Event-ID, so no event is lost or repeated; after
        `max_reconnects` failed tries in a row it raises ServerUnreachable."""
        last_id = after
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                with self._http.stream(
                    "GET",
                    f"/v1/jobs/{job_id}/events",
                    params={"stream": "true"},
                    headers=headers,
                    timeout=self._stream_timeout,
                ) as response:
                    if not response.is_success:
                        response.read()
                        raise_for_error(response)
                    for message in parse_sse(response.iter_lines()):
                        if message.data == DONE:
                            return
                        event = _decode_event(message.data)
                        last_id = message.id or event.get("id") or last_id
                        failures = 0
                        yield event
            except httpx.TransportError as exc:
                failures += 1
                if failures > self.max_reconnects:
                    raise self._unreachable(exc) from None
            else:  # the server closed the stream before [DONE]
                failures += 1
                if failures > self.max_reconnects:
                    raise ServerUnreachable(f"the event stream of job {job_id} kept ending before the job did")
            time.sleep(min(0.25 * 2 ** (failures - 1), 5.0))
