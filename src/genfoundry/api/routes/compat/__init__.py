"""The seed systems' own APIs, each under `/compat/<system>`: thin routers that map a system's requests onto the
same services as `/v1` (auth, ownership, limits, errors, jobs and history included). docs/compat.md has the map."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
