"""Signed, expiring image URLs, so an image link works in a browser without the API key (as OpenAI's do)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

URL_LIFETIME_S = 3600


def load_or_create_secret(path: Path) -> bytes:
    """The server's signing secret, created once with owner-only permissions."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(secret)
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, image_id: str, expires: int) -> str:
        message = f"{image_id}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def image_url(self, base_url: str, image_id: str, *, now: float | None = None) -> str:
        expires = int((now or time.time()) + URL_LIFETIME_S)
        signature = self._signature(image_id, expires)
        return f"{base_url.rstrip('/')}/v1/images/{image_id}?expires={expires}&signature={signature}"

    def path_url(self, base_url: str, path: str, *, now: float | None = None) -> str:
        """A signed, expiring URL for any server path (e.g. a training sample image)."""
        expires = int((now or time.time()) + URL_LIFETIME_S)
        return f"{base_url.rstrip('/')}{path}?expires={expires}&signature={self._signature(path, expires)}"

    def verify(self, image_id: str, expires: int, signature: str) -> bool:
        """Whether `signature` is ours for `image_id` until `expires`; expired, forged or not even hex is False."""
        if expires < time.time() or not signature.isascii():
            return False  # ours are hex, and compare_digest raises on a str with other characters
        return hmac.compare_digest(self._signature(image_id, expires), signature)
