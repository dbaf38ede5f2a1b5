"""The dataset jobs: downloading image URLs into a dataset, and captioning a dataset's images.

Their kinds name module-level functions (`download_urls`, `caption_dataset`, `finish_dataset_job`), so a job's
own process runs them over its `JobEnv` without building the server's services.
"""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

from sqlalchemy.orm import Session

from genfoundry.config import Settings
from genfoundry.datasets.images import normalize_image
from genfoundry.datasets.url_fetch import FetchPolicy, FetchResult, fetch_all
from genfoundry.db.tables import DatasetItem, Job
from genfoundry.errors import GenfoundryError
from genfoundry.inference.caption import (
    CaptionCache,
    Captioner,
    CaptionerSpec,
    apply_trigger_word,
    caption_with_cache,
    load_captioner_catalog,
)
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.runner import JobContext, JobRunner
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo.ids import new_id
from genfoundry.schemas.jobs import JobStatus
from genfoundry.services.datasets import caption_key, image_key, write_manifest

DATASET_URLS_KIND = "dataset_urls"
DATASET_CAPTION_KIND = "dataset_caption"
_HERE = "genfoundry.services.dataset_jobs"


class CaptionerPool:
    """Each captioner loaded once per process, on first use."""

    def __init__(self, specs: dict[str, CaptionerSpec], *, device: str, dtype: str) -> None:
        self.specs = specs
        self.device = device
        self.dtype = dtype
        self._loaded: dict[str, Captioner] = {}
        self._lock = threading.Lock()

    def get(self, captioner_id: str) -> Captioner:
        with self._lock:
            if captioner_id not in self._loaded:
                self._loaded[captioner_id] = Captioner(self.specs[captioner_id], device=self.device, dtype=self.dtype)
            return self._loaded[captioner_id]


def captioner_pool(settings: Settings) -> CaptionerPool:
    """The captioners the settings' catalog lists, each loaded on first use."""
    specs = load_captioner_catalog(settings.captioners_file, settings.tiny_models_dir)
    device = settings.resolved_device()
    return CaptionerPool(specs, device=device, dtype=settings.resolved_dtype(device))


def register_dataset_jobs(runner: JobRunner) -> None:
    runner.register(
        DATASET_URLS_KIND, f"{_HERE}:download_urls", on_finish=f"{_HERE}:finish_dataset_job", uses_device=False
    )
    runner.register(DATASET_CAPTION_KIND, f"{_HERE}:caption_dataset", on_finish=f"{_HERE}:finish_dataset_job")


def download_urls(ctx: JobContext) -> dict[str, Any]:
    """The URL download job."""
    return DatasetJobs(ctx.env).download_urls(ctx)


def caption_dataset(ctx: JobContext) -> dict[str, Any]:
    """The captioning job."""
    return DatasetJobs(ctx.env).caption(ctx)


def finish_dataset_job(session: Session, job: Job) -> None:
    """The dataset leaves `processing` / `captioning` whatever the job's end, in the job's final transaction."""
    dataset = datasets_repo.get_dataset(session=session, dataset_id=job.params["dataset_id"])
    if dataset is None or dataset.active_job_id != job.id:
        return
    dataset.active_job_id = None
    if job.kind == DATASET_URLS_KIND and job.status != JobStatus.SUCCEEDED:
        dataset.status, dataset.error = "failed", job.error or f"download job {job.status}"
    else:
        dataset.status = "ready"
    session.flush()


class DatasetJobs:
    """The jobs' work over a job environment: the dataset's rows and files, and the captioners (kept per process)."""

    def __init__(self, env: JobEnv) -> None:
        self.sessions = env.sessions
        self.store = env.store
        self.settings = env.settings.datasets
        self.captioners = env.cached("captioners", lambda: captioner_pool(env.settings))
        self.caption_cache_dir = env.settings.home / "cache" / "captions"

    # -- URL downloads -----------------------------------------------------------------------------

    def download_urls(self, ctx: JobContext) -> dict[str, Any]:
        dataset_id: str = ctx.params["dataset_id"]
        urls: list[str] = ctx.params["urls"]
        policy = FetchPolicy(
            allowed_networks=tuple(self.settings.allowed_fetch_networks),
            total_timeout_s=self.settings.fetch_timeout_s,
            max_bytes=self.settings.fetch_max_bytes,
            concurrency=self.settings.fetch_concurrency,
        )
        items: list[DatasetItem | None] = [None] * len(urls)
        done = 0

        def on_result(index: int, result: FetchResult) -> None:
            nonlocal done
            item = items[index] = self._store_download(dataset_id, result)
            done += 1
            # One event per URL, so a client following the job shows each one's fate as it lands.
            ctx.event("url", f"{item.status}: {item.source}", url=item.source, status=item.status, reason=item.reason)
            ctx.progress(done, len(urls))
            ctx.check_cancelled()

        ctx.progress(0, len(urls))
        asyncio.run(fetch_all(urls, policy=policy, on_result=on_result))
        rows = [item for item in items if item is not None]
        self._mark_duplicates(dataset_id, rows)
        with self.sessions() as session:
            datasets_repo.add_items(session=session, items=rows)
            dataset = datasets_repo.get_dataset(session=session, dataset_id=dataset_id)
            accepted = sum(1 for item in rows if item.status == "ok")
            if dataset is not None:
                dataset.accepted = accepted
                dataset.rejected = sum(1 for item in rows if item.status == "rejected")
                dataset.duplicates = sum(1 for item in rows if item.status == "duplicate")
                dataset.total_bytes = sum(item.bytes for item in rows if item.status == "ok")
            session.commit()
        write_manifest(sessions=self.sessions, store=self.store, dataset_id=dataset_id)
        if accepted == 0:
            raise GenfoundryError("no URL gave a valid image; see the dataset's items for each reason")
        return {"dataset_id": dataset_id, "accepted": accepted, "total": len(urls)}

    def _mark_duplicates(self, dataset_id: str, rows: list[DatasetItem]) -> None:
        """Downloads finish in any order; the first in the input list keeps an image, later copies are dropped."""
        first: dict[str, str] = {}
        for item in rows:
            if item.status != "ok" or item.sha256 is None:
                continue
            if item.sha256 not in first:
                first[item.sha256] = item.source
                continue
            assert item.file is not None
            self.store.delete(image_key(dataset_id, item.file))
            item.status, item.duplicate_of, item.file, item.bytes = "duplicate", first[item.sha256], None, 0

    def _store_download(self, dataset_id: str, result: FetchResult) -> DatasetItem:
        item = DatasetItem(id=new_id("item"), dataset_id=dataset_id, source=result.url, status="rejected")
        if not result.ok or result.data is None:
            item.reason = result.reason or "download failed"
            return item
        try:
            image = normalize_image(
                result.data, max_pixels=self.settings.max_image_pixels, fmt=self.settings.image_format
            )
        except GenfoundryError as exc:
            item.reason = exc.message
            return item
        item.sha256, item.width, item.height = image.sha256, image.width, image.height
        extension = ".png" if self.settings.image_format == "PNG" else ".jpg"
        item.file = f"{item.id}{extension}"
        self.store.put_bytes(image_key(dataset_id, item.file), image.data)
        item.status, item.bytes = "ok", len(image.data)
        return item

    # -- captioning --------------------------------------------------------------------------------

    def caption(self, ctx: JobContext) -> dict[str, Any]:
        from PIL import Image

        params = ctx.params
        dataset_id: str = params["dataset_id"]
        captioner = self.captioners.get(params["model"])
        cache = CaptionCache(self.caption_cache_dir)
        with self.sessions() as session:
            items, _ = datasets_repo.list_items(session=session, dataset_id=dataset_id, status="ok")
        todo = [item for item in items if params["overwrite"] or not item.caption]
        batch = int(params["batch_size"])
        written = 0
        ctx.progress(0, len(todo))
        for start in range(0, len(todo), batch):
            ctx.check_cancelled()
            chunk = todo[start : start + batch]
            images = []
            for item in chunk:
                assert item.file is not None and item.sha256 is not None
                data = self.store.get_bytes(image_key(dataset_id, item.file))
                images.append((item.sha256, Image.open(io.BytesIO(data)).convert("RGB")))
            captions = caption_with_cache(
                captioner, images, prompt=params["prompt"], cache=cache, batch_size=batch, on_progress=None
            )
            filled: list[dict[str, str]] = []
            with self.sessions() as session:
                for item, text in zip(chunk, captions, strict=True):
                    final = apply_trigger_word(text, params["trigger_word"])
                    filled.append({"id": item.id, "caption": final})
                    assert item.file is not None
                    self.store.put_bytes(caption_key(dataset_id, item.file), final.encode("utf-8"))
                    row = datasets_repo.require_item(session=session, dataset_id=dataset_id, item_id=item.id)
                    row.caption = final
                    written += 1
                session.commit()
            # The batch's captions as an event, so a client following the job fills them in as they come.
            ctx.event("captions", f"{written} of {len(todo)} captioned", items=filled)
            ctx.progress(written, len(todo))
        write_manifest(sessions=self.sessions, store=self.store, dataset_id=dataset_id)
        return {"dataset_id": dataset_id, "captioned": written, "model": params["model"]}
