"""Overload: bursts of concurrent requests at a real server whose queue is small. A full queue must be refused
at once: prints p50/p95/p99 of the 503s (goal p99 <= 50 ms) and of the accepted requests, for image
generations and chat completions, and side by side the same burst of `GET /healthz` (the floor: what any
request costs this server and client under that load). Rounds interleave the three bursts in one run.

The client is a few lines of raw HTTP/1.1 over keep-alive connections opened before timing: with 200 requests at
once on a 2-core machine, a full HTTP client's own per-request work would be measured as server latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.common import make_home, report, running_server

GOAL_P99_S = 0.050


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    retry_after: str | None


class Connection:
    """One keep-alive HTTP/1.1 connection; `send` writes a request and reads the whole (Content-Length) reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    def request_bytes(self, method: str, path: str, body: dict[str, object] | None) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(payload)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        return (head + "\r\n").encode() + payload

    async def send(self, raw: bytes) -> Answer:
        start = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        await self.reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, time.perf_counter() - start, headers.get("retry-after"))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def burst(
    connections: list[Connection], method: str, path: str, bodies: list[dict[str, object] | None]
) -> list[Answer]:
    """One request per connection, all written at once (requests are built before timing)."""
    raws = [conn.request_bytes(method, path, body) for conn, body in zip(connections, bodies, strict=True)]
    return list(await asyncio.gather(*(conn.send(raw) for conn, raw in zip(connections, raws, strict=True))))


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "none"
    if len(samples) == 1:
        return f"{samples[0] * 1000:.1f} ms (n=1)"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1000:.1f} / p95 {cuts[94] * 1000:.1f} / p99 {cuts[98] * 1000:.1f} ms (n={len(samples)})"


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1 else samples[0]


async def open_warm(host: str, port: int, count: int) -> list[Connection]:
    """`count` connections, each already past the server's accept (one untimed /healthz each)."""
    connections = [await Connection.open(host, port) for _ in range(count)]
    await burst(connections, "GET", "/healthz", [None] * count)
    return connections


async def run(url: str, args: argparse.Namespace) -> dict[str, list[Answer]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    n = args.concurrency
    image = {
        "model": "tiny-sd15",
        "prompt": "a red fox",
        "size": "64x64",
        "steps": args.steps,
        "response_format": "url",
    }
    chat = {"model": "tiny-llm", "messages": [{"role": "user", "content": "hello"}], "max_tokens": args.max_tokens}
    targets: dict[str, tuple[str, str, list[dict[str, object] | None]]] = {
        "images": ("POST", "/v1/images/generations", [{**image, "seed": i} for i in range(n)]),
        "chat": ("POST", "/v1/chat/completions", [{**chat, "seed": i} for i in range(n)]),
        "healthz": ("GET", "/healthz", [None] * n),
    }
    first = await Connection.open(host, port)
    for name in ("images", "chat"):  # each engine's base loaded by a request that is not timed
        method, path, bodies = targets[name]
        answer = await first.send(first.request_bytes(method, path, bodies[0]))
        if answer.status != 200:
            raise RuntimeError(f"warm-up {name} request answered {answer.status}")
    await first.close()
    answers: dict[str, list[Answer]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (method, path, bodies) in targets.items():
            # Fresh connections per burst: the server closes keep-alive connections idle for 5 s, and a burst's
            # refused requests wait that long for its accepted ones.
            connections = await open_warm(host, port, n)
            answers[name].extend(await burst(connections, method, path, bodies))
            for conn in connections:
                await conn.close()
    last = await Connection.open(host, port)
    ready = await last.send(last.request_bytes("GET", "/readyz", None))
    await last.close()
    if ready.status != 200:
        raise RuntimeError(f"the server is not ready after the bursts: {ready.status}")
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=200, help="requests per burst (one connection each)")
    parser.add_argument("--queue-size", type=int, default=8, help="the server's GENFOUNDRY_QUEUE_SIZE")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of an accepted image request")
    parser.add_argument("--max-tokens", type=int, default=16, help="new tokens of an accepted chat request")
    args = parser.parse_args()

    home = make_home()
    load_before = os.getloadavg()
    env = {"GENFOUNDRY_QUEUE_SIZE": str(args.queue_size)}
    with running_server(home, **env) as url:
        answers = asyncio.run(run(url, args))
    load_after = os.getloadavg()

    floor = [a.seconds for a in answers["healthz"]]
    rows: list[tuple[str, str]] = [("GET /healthz, same burst (floor)", percentiles(floor))]
    for name in ("images", "chat"):
        refused = [a for a in answers[name] if a.status == 503]
        accepted = [a for a in answers[name] if a.status == 200]
        other = sorted({a.status for a in answers[name]} - {200, 503})
        no_retry_after = sum(1 for a in refused if not a.retry_after)
        rows += [
            (f"{name}: 503 latency", percentiles([a.seconds for a in refused])),
            (f"{name}: accepted (200) latency", percentiles([a.seconds for a in accepted])),
            (
                f"{name}: answers",
                f"{len(accepted)} accepted, {len(refused)} refused ({no_retry_after} without Retry-After)"
                + (f", other statuses {other}" if other else ""),
            ),
        ]
        if refused:
            worst = p99([a.seconds for a in refused])
            verdict = "met" if worst <= GOAL_P99_S else "NOT met"
            rows += [
                (f"{name}: 503 p99 vs goal", f"{worst * 1000:.1f} ms vs <= {GOAL_P99_S * 1000:.0f} ms: {verdict}"),
                (f"{name}: ratio 503 p99 / floor p99", f"{worst / p99(floor):.2f}"),
            ]
    rows.append(("load average before / after (1 min)", f"{load_before[0]:.2f} / {load_after[0]:.2f}"))
    report(
        f"Overload: {args.concurrency} concurrent requests x {args.rounds} rounds, queue size {args.queue_size}, "
        f"tiny-sd15 64x64 {args.steps} steps / tiny-llm {args.max_tokens} tokens",
        rows,
    )


if __name__ == "__main__":
    main()
