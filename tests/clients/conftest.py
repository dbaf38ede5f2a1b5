"""Clients no one here wrote, pointed at the real test server. LiteLLM fetches its model cost map from GitHub
when imported unless told to use its bundled copy, so that is set before any test imports it."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
