"""Signed URLs: a signature verifies for its path until it expires; anything else is refused, never an error."""

from __future__ import annotations

import time

import pytest

from genfoundry.services.urls import UrlSigner
from tests.conftest import Keys, LiveServer
from tests.helpers import assert_error


def test_a_signature_verifies_for_its_path_until_it_expires() -> None:
    signer = UrlSigner(b"s" * 32)
    url = signer.path_url("http://x", "/v1/diagrams/dg_1/content", now=time.time())
    expires, signature = (part.split("=")[1] for part in url.split("?")[1].split("&"))
    assert signer.verify("/v1/diagrams/dg_1/content", int(expires), signature)
    assert not signer.verify("/v1/diagrams/dg_2/content", int(expires), signature)
    assert not signer.verify("/v1/diagrams/dg_1/content", int(time.time()) - 1, signature)


@pytest.mark.parametrize("signature", ["é", "n¶Ã\x0f÷H8N", "ab\udc80", ""])
def test_a_signature_that_is_not_hex_is_refused(signature: str) -> None:
    # hmac.compare_digest raises TypeError on a str with non-ASCII characters: that was a 500 for a fuzzed URL.
    assert not UrlSigner(b"s" * 32).verify("img_1", int(time.time()) + 60, signature)


@pytest.mark.parametrize(
    "path", ["/v1/images/img_1", "/v1/diagrams/dg_1/content", "/v1/fine_tuning/jobs/job_1/samples/a.png"]
)
def test_a_signed_url_with_a_non_ascii_signature_is_a_401(live: LiveServer, keys: Keys, path: str) -> None:
    with live.client() as client:  # no key (keys exist, so one is needed): only the signature could open it
        response = client.get(path, params={"expires": int(time.time()) + 600, "signature": "n¶Ã÷H8N"})
    assert_error(response, 401)
