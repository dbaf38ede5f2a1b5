"""Collects every router."""

from __future__ import annotations

from fastapi import APIRouter

from genfoundry.api.routes import generations, health, images, keys, models

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(images.router)
api_router.include_router(generations.router)
api_router.include_router(models.router)
api_router.include_router(keys.router)
