"""Hugging Face Hub access: the local cache first, a quick look whether the Hub answers before asking it for
weights, and nothing sent home.

huggingface_hub retries an unanswered request with back-off (the default captioner spent ~190 s that way before
failing on a machine without network). A model that is not cached is fetched only after `hub_answers()` saw the
Hub's endpoint reply within `HUB_PROBE_TIMEOUT_S`; otherwise the load fails at once, naming the model and the
command that fetches it. Imports nothing of ours and no ML library; huggingface_hub and httpx are imported when a
function needs them.
"""

from __future__ import annotations

import os
import sys

HUB_PROBE_TIMEOUT_S = 3.0
_TRUTHY = {"1", "true", "yes", "on"}

# Set where our processes start unless the user set them: the libraries' own switches for usage reports.
NO_PHONE_HOME_ENV = {
    "HF_HUB_DISABLE_TELEMETRY": "1",  # huggingface_hub, and diffusers / transformers through it
    "DISABLE_TELEMETRY": "1",  # the older name diffusers and transformers still read
}


def use_hub_defaults() -> None:
    """Switch off usage reports (environment defaults; a value the user set wins), also for a huggingface_hub
    already imported, which read its environment then."""
    for name, value in NO_PHONE_HOME_ENV.items():
        os.environ.setdefault(name, value)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_DISABLE_TELEMETRY"].strip().lower() in _TRUTHY:
        setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)  # noqa: B010 (a module attribute mypy does not see)


def hub_offline() -> bool:
    """Read at call time (huggingface_hub reads it once at import), so a later `HF_HUB_OFFLINE=1` counts."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    """The Hub's base URL: `HF_ENDPOINT` as it is now, else huggingface_hub's default."""
    endpoint = os.environ.get("HF_ENDPOINT", "").strip()
    if not endpoint:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    return endpoint.rstrip("/")


def hub_answers(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hub's endpoint answers an HTTP request (any status) within `timeout_s`; one try, no retries."""
    import httpx

    try:
        httpx.head(hub_endpoint(), timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL):  # unreachable, refused, timed out, or not a URL
        return False
    return True


def fetch_command(repo_id: str) -> str:
    """The command that puts a Hub repo's files into the local cache."""
    return f"hf download {repo_id}"
