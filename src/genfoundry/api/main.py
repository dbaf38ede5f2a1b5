"""Collects every router."""

from __future__ import annotations

from fastapi import APIRouter

from genfoundry.api.routes import (
    batches,
    chat,
    classify,
    compat,
    completions,
    conversations,
    datasets,
    diagram_generation,
    diagrams,
    embeddings,
    files,
    fine_tuning,
    generations,
    health,
    images,
    jobs,
    keys,
    models,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(images.router)
api_router.include_router(generations.router)
api_router.include_router(models.router)
api_router.include_router(keys.router)
api_router.include_router(datasets.router)
api_router.include_router(files.router)
api_router.include_router(batches.router)
api_router.include_router(jobs.router)
api_router.include_router(fine_tuning.router)
api_router.include_router(fine_tuning.methods_router)
api_router.include_router(classify.router)
api_router.include_router(embeddings.router)
api_router.include_router(diagrams.router)
api_router.include_router(diagram_generation.router)
api_router.include_router(chat.router)
api_router.include_router(completions.router)
api_router.include_router(conversations.router)
api_router.include_router(compat.router)
