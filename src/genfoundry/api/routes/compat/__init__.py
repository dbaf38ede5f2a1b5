"""The seed systems' own APIs, each under `/compat/<system>`: thin routers that map a system's requests onto the
same services as `/v1` (auth, ownership, limits, errors, jobs and history included). docs/compat.md has the map."""

from __future__ import annotations

from fastapi import APIRouter

from genfoundry.api.routes.compat import dreambooth, flux_train, postpulse, super_realism

router = APIRouter()
router.include_router(super_realism.router)
router.include_router(flux_train.router)
router.include_router(postpulse.router)
router.include_router(dreambooth.router)
