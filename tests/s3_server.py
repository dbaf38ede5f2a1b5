"""An S3-compatible server for the tests: moto in server mode (from PyPI) on a loopback port, in its own process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

ACCESS_KEY = "genfoundry-test"
SECRET_KEY = "genfoundry-test-secret"  # moto accepts any pair; this is no secret
REGION = "us-east-1"
S3_BUCKET = "genfoundry-test"  # the bucket the `s3` fixture makes


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def options(self, *, secret: str = SECRET_KEY) -> dict[str, Any]:
        """The fsspec (s3fs) storage options that reach this server."""
        return {
            "endpoint_url": self.endpoint,
            "key": ACCESS_KEY,
            "secret": secret,
            "client_kwargs": {"region_name": REGION},
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@contextmanager
def running_s3(port: int) -> Iterator[S3Server]:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        yield S3Server(endpoint=endpoint, process=process)
    finally:
        process.terminate()
        process.wait(timeout=30)
