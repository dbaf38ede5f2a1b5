"""Datasets: create from a ZIP, URLs or JSONL; browse, edit captions, export a kohya config, delete."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.config import DatasetSettings
from genfoundry.datasets.jsonl import JsonlLimits, validate_jsonl
from genfoundry.datasets.kohya import KohyaOptions, kohya_dataset_config
from genfoundry.datasets.zip_ingest import ZipLimits, ingest_zip
from genfoundry.db.tables import Dataset, DatasetItem, Job
from genfoundry.errors import Conflict, Invalid, NotFound, TooLarge
from genfoundry.inference.caption import apply_trigger_word
from genfoundry.jobs.runner import JobRunner
from genfoundry.repo import datasets as datasets_repo
from genfoundry.repo.ids import new_id
from genfoundry.storage import ArtifactStore

RESOLUTION_BUCKETS = ((512, "<512"), (768, "512-767"), (1024, "768-1023"), (1536, "1024-1535"))
ZIP_MAGIC = b"PK\x03\x04"


def dataset_prefix(dataset_id: str) -> str:
    return f"datasets/{dataset_id}"


def image_key(dataset_id: str, file: str) -> str:
    return f"{dataset_prefix(dataset_id)}/images/{file}"


def caption_key(dataset_id: str, file: str) -> str:
    return f"{dataset_prefix(dataset_id)}/images/{Path(file).stem}.txt"


def resolution_bucket(width: int, height: int) -> str:
    side = max(width, height)
    for limit, label in RESOLUTION_BUCKETS:
        if side < limit:
            return label
    return "1536+"


@dataclass(frozen=True)
class DatasetPage:
    datasets: list[Dataset]
    has_more: bool
    stats: dict[str, dict[str, Any]]  # by dataset id; empty unless asked for


class DatasetService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ArtifactStore,
        settings: DatasetSettings,
        jobs: JobRunner,
        work_dir: Path,
        captioner_ids: frozenset[str],
    ) -> None:
        self.captioner_ids = captioner_ids
        self.sessions = sessions
        self.store = store
        self.settings = settings
        self.jobs = jobs
        self.work_dir = work_dir

    # -- creation ----------------------------------------------------------------------------------

    def scratch_dir(self) -> tempfile.TemporaryDirectory[str]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=self.work_dir, prefix="dataset-")

    def zip_limits(self) -> ZipLimits:
        s = self.settings
        return ZipLimits(
            max_entries=s.max_zip_entries,
            max_total_bytes=s.max_uncompressed_bytes,
            max_entry_bytes=s.max_entry_bytes,
            max_ratio=s.max_compression_ratio,
            max_pixels=s.max_image_pixels,
        )

    def upload_zip(
        self, *, owner_id: str, name: str, upload: BinaryIO, trigger_word: str | None, filename: str | None
    ) -> tuple[Dataset, dict[str, Any]]:
        """`create_from_zip` for an uploaded ZIP, streamed aside first (at most `max_zip_bytes`)."""
        with self.scratch_dir() as scratch:
            target = Path(scratch) / "upload.zip"
            copy_upload(upload, target, limit=self.settings.max_zip_bytes, param="file")
            return self.create_from_zip(
                owner_id=owner_id, name=name, zip_path=target, trigger_word=trigger_word, filename=filename
            )

    def upload_file(self, *, owner_id: str, upload: BinaryIO, filename: str, purpose: str = "fine-tune") -> Dataset:
        """A fine-tune file (the files API): a ZIP of images or a JSONL, told apart by its first bytes; a `batch`
        file is kept as uploaded (its lines are checked one by one when a batch runs them)."""
        with self.scratch_dir() as scratch:
            target = Path(scratch) / "upload"
            if purpose == "batch":
                copy_upload(upload, target, limit=self.settings.max_batch_file_bytes, param="file")
                return self.store_jsonl(owner_id=owner_id, filename=filename, data=target.read_bytes(), purpose=purpose)
            copy_upload(upload, target, limit=self.settings.max_zip_bytes, param="file")
            with target.open("rb") as handle:
                is_zip = handle.read(4) == ZIP_MAGIC
            if is_zip:
                dataset, _report = self.create_from_zip(
                    owner_id=owner_id, name=filename, zip_path=target, trigger_word=None, filename=filename
                )
                return dataset
            return self.create_from_jsonl(owner_id=owner_id, name=filename, path=target, filename=filename)

    def create_from_zip(
        self,
        *,
        owner_id: str,
        name: str,
        zip_path: Path,
        trigger_word: str | None,
        filename: str | None = None,
        purpose: str = "fine-tune",
    ) -> tuple[Dataset, dict[str, Any]]:
        """Check, clean and store every image of the ZIP; the report says what happened to each file."""
        dataset_id = new_id("ds")
        with self.scratch_dir() as scratch:
            out_dir = Path(scratch) / "images"
            out_dir.mkdir()
            report = ingest_zip(zip_path, out_dir, limits=self.zip_limits(), image_format=self.settings.image_format)
            items = []
            written: list[str] = []
            try:
                for entry in report.items:
                    caption = entry.caption
                    if entry.status == "ok" and entry.file:
                        if caption and trigger_word:
                            caption = apply_trigger_word(caption, trigger_word)
                        self.store.put_file(image_key(dataset_id, entry.file), out_dir / entry.file)
                        written.append(image_key(dataset_id, entry.file))
                        if caption:
                            self.store.put_bytes(caption_key(dataset_id, entry.file), caption.encode("utf-8"))
                    items.append(
                        DatasetItem(
                            id=new_id("item"),
                            dataset_id=dataset_id,
                            source=entry.source,
                            status=entry.status,
                            reason=entry.reason,
                            sha256=entry.sha256,
                            width=entry.width,
                            height=entry.height,
                            caption=caption if entry.status == "ok" else None,
                            file=entry.file if entry.status == "ok" else None,
                            bytes=entry.bytes or 0,
                            duplicate_of=entry.duplicate_of,
                        )
                    )
                dataset = self._save_new(
                    owner_id=owner_id,
                    id=dataset_id,
                    name=name,
                    kind="image",
                    status="ready",
                    trigger_word=trigger_word,
                    filename=filename,
                    purpose=purpose,
                    upload_bytes=zip_path.stat().st_size,
                    items=items,
                )
            except BaseException:
                self.store.delete(dataset_prefix(dataset_id))
                raise
        return dataset, report.to_dict()

    def create_from_jsonl(
        self, *, owner_id: str, name: str, path: Path, filename: str | None, purpose: str = "fine-tune"
    ) -> Dataset:
        report = validate_jsonl(path, limits=JsonlLimits(max_line_bytes=self.settings.max_jsonl_line_bytes))
        dataset_id = new_id("ds")
        size = path.stat().st_size  # before put_file, which may move the file away
        self.store.put_file(f"{dataset_prefix(dataset_id)}/data.jsonl", path)
        return self._save_jsonl(
            owner_id=owner_id,
            dataset_id=dataset_id,
            name=name,
            filename=filename,
            purpose=purpose,
            size=size,
            accepted=report.lines,
            text_format=report.format,
        )

    def store_jsonl(self, *, owner_id: str, filename: str, data: bytes, purpose: str) -> Dataset:
        """A JSONL file kept as it is, without a training format's checks (batch input and output files)."""
        dataset_id = new_id("file")
        self.store.put_bytes(f"{dataset_prefix(dataset_id)}/data.jsonl", data)
        return self._save_jsonl(
            owner_id=owner_id,
            dataset_id=dataset_id,
            name=filename,
            filename=filename,
            purpose=purpose,
            size=len(data),
            accepted=data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1),
        )

    def _save_jsonl(self, *, owner_id: str, dataset_id: str, size: int, accepted: int, **fields: Any) -> Dataset:
        """The row of a JSONL file already stored under `dataset_id` (the file is removed if the row is not saved)."""
        try:
            return self._save_new(
                owner_id=owner_id,
                id=dataset_id,
                kind="text",
                status="ready",
                trigger_word=None,
                upload_bytes=size,
                items=[],
                accepted=accepted,
                total_bytes=size,
                **fields,
            )
        except BaseException:
            self.store.delete(dataset_prefix(dataset_id))
            raise

    def create_from_urls(
        self, *, owner_id: str, name: str, urls: list[str], trigger_word: str | None
    ) -> tuple[Dataset, Job]:
        """A dataset in status `processing` and the download job that fills it."""
        if not urls:
            raise Invalid("urls must list at least one image URL", param="urls")
        if len(urls) > self.settings.max_urls:
            raise Invalid(f"at most {self.settings.max_urls} URLs per dataset", param="urls")
        dataset_id = new_id("ds")
        with self.sessions() as session:
            job = self.jobs.submit(
                session=session, owner_id=owner_id, kind="dataset_urls", params={"dataset_id": dataset_id, "urls": urls}
            )
            dataset = datasets_repo.create_dataset(
                session=session,
                id=dataset_id,
                owner_id=owner_id,
                name=name,
                kind="image",
                status="processing",
                trigger_word=trigger_word,
                active_job_id=job.id,
            )
            session.commit()
        self.jobs.start(job)
        return dataset, job

    def start_captioning(
        self,
        *,
        owner_id: str,
        dataset_id: str,
        model: str | None,
        prompt: str | None,
        trigger_word: str | None,
        overwrite: bool,
        batch_size: int | None,
    ) -> Job:
        """Queue a captioning job; the dataset is `captioning` (and its captions read-only) until it ends."""
        model = model or self.settings.default_captioner
        if model not in self.captioner_ids:
            known = ", ".join(sorted(self.captioner_ids))
            raise NotFound(f"unknown captioner {model!r}; known: {known}", param="model")
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            if dataset.kind != "image":
                raise Invalid("only image datasets can be captioned", param="dataset_id")
            if dataset.status != "ready":
                raise Conflict(f"dataset {dataset_id} is {dataset.status}; caption it when it is ready")
            trigger = (trigger_word if trigger_word is not None else dataset.trigger_word or "").strip() or None
            params = {
                "dataset_id": dataset_id,
                "model": model,
                "prompt": prompt,
                "trigger_word": trigger,
                "overwrite": overwrite,
                "batch_size": batch_size or self.settings.caption_batch_size,
            }
            job = self.jobs.submit(session=session, owner_id=owner_id, kind="dataset_caption", params=params)
            if not datasets_repo.claim_dataset(
                session=session, dataset_id=dataset_id, status="captioning", job_id=job.id
            ):
                session.rollback()
                raise Conflict(f"dataset {dataset_id} is already being processed")
            if trigger is not None:
                dataset.trigger_word = trigger
            session.commit()
        self.jobs.start(job)
        return job

    def _save_new(self, *, items: list[DatasetItem], **fields: Any) -> Dataset:
        counts = Counter(item.status for item in items)
        fields.setdefault("accepted", counts["ok"])
        fields.setdefault("total_bytes", sum(item.bytes for item in items if item.status == "ok"))
        with self.sessions() as session:
            dataset = datasets_repo.create_dataset(
                session=session,
                rejected=counts["rejected"],
                duplicates=counts["duplicate"],
                skipped=counts["skipped"],
                **fields,
            )
            datasets_repo.add_items(session=session, items=items)
            session.commit()
        if dataset.kind == "image":
            self.write_manifest(dataset.id)
        return dataset

    # -- reading and editing -----------------------------------------------------------------------

    def write_manifest(self, dataset_id: str) -> None:
        write_manifest(sessions=self.sessions, store=self.store, dataset_id=dataset_id)

    def get(self, *, owner_id: str, dataset_id: str) -> Dataset:
        with self.sessions() as session:
            return datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)

    def find_by_name(self, *, owner_id: str, name: str) -> Dataset | None:
        """The owner's newest dataset called `name`, or None."""
        with self.sessions() as session:
            return datasets_repo.find_dataset_by_name(session=session, owner_id=owner_id, name=name)

    def get_with_stats(self, *, owner_id: str, dataset_id: str) -> tuple[Dataset, dict[str, Any]]:
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            return dataset, self.stats(session, dataset)

    def list_datasets(
        self, *, owner_id: str, limit: int, after: str | None, purpose: str | None = None, with_stats: bool = False
    ) -> DatasetPage:
        """Newest first; with `with_stats`, the page's stats come from one query, not one per dataset."""
        with self.sessions() as session:
            rows, has_more = datasets_repo.list_datasets(
                session=session, owner_id=owner_id, limit=limit, after=after, purpose=purpose
            )
            stats = self.stats_for(session, rows) if with_stats else {}
        return DatasetPage(datasets=rows, has_more=has_more, stats=stats)

    def stats_of(self, dataset: Dataset) -> dict[str, Any]:
        with self.sessions() as session:
            return self.stats(session, dataset)

    def stats(self, session: Session, dataset: Dataset) -> dict[str, Any]:
        return self.stats_for(session, [dataset])[dataset.id]

    def stats_for(self, session: Session, datasets: Sequence[Dataset]) -> dict[str, dict[str, Any]]:
        """Each dataset's stats by id; the image datasets' accepted items are read in one query for them all."""
        image_ids = [dataset.id for dataset in datasets if dataset.kind != "text"]
        shapes: dict[str, list[tuple[int, int, bool]]] = {dataset_id: [] for dataset_id in image_ids}
        for dataset_id, width, height, captioned in datasets_repo.accepted_item_shapes(
            session=session, dataset_ids=image_ids
        ):
            shapes[dataset_id].append((width, height, captioned))
        return {dataset.id: _stats(dataset, shapes.get(dataset.id, [])) for dataset in datasets}

    def list_items(
        self, *, owner_id: str, dataset_id: str, limit: int, after: str | None, status: str | None
    ) -> tuple[list[DatasetItem], bool]:
        """In ingestion order; `after` is an item id."""
        with self.sessions() as session:
            datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            return datasets_repo.list_items(
                session=session, dataset_id=dataset_id, limit=limit, after=after, status=status
            )

    def item_image(self, *, owner_id: str, dataset_id: str, item_id: str) -> bytes:
        with self.sessions() as session:
            datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            item = datasets_repo.require_item(session=session, dataset_id=dataset_id, item_id=item_id)
        if item.status != "ok" or not item.file:
            raise Conflict(f"item {item.id} was {item.status}: it has no stored image")
        return self.store.get_bytes(image_key(dataset_id, item.file))

    def jsonl_content(self, *, owner_id: str, dataset_id: str) -> bytes:
        """A text dataset's JSONL as uploaded."""
        dataset = self.get(owner_id=owner_id, dataset_id=dataset_id)
        if dataset.kind != "text":
            raise Invalid("only JSONL files have downloadable content; see /v1/datasets/{id}/items", param="file_id")
        return self.store.get_bytes(f"{dataset_prefix(dataset.id)}/data.jsonl")

    def update_caption(self, *, owner_id: str, dataset_id: str, item_id: str, caption: str) -> DatasetItem:
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            if dataset.status != "ready":
                raise Conflict(f"dataset {dataset_id} is {dataset.status}; edit captions when it is ready")
            item = datasets_repo.require_item(session=session, dataset_id=dataset_id, item_id=item_id)
            if item.status != "ok" or not item.file:
                raise Conflict(f"item {item_id} was {item.status}: it has no image to caption")
            self._write_caption(dataset_id, item, caption.strip())
            session.commit()
        self.write_manifest(dataset_id)
        return item

    def _write_caption(self, dataset_id: str, item: DatasetItem, text: str) -> None:
        """The caption file beside the item's image ("" removes it) and the row's caption."""
        assert item.file is not None
        key = caption_key(dataset_id, item.file)
        if text:
            self.store.put_bytes(key, text.encode("utf-8"))
        else:
            self.store.delete(key)
        item.caption = text or None

    def edit_captions(self, *, owner_id: str, dataset_id: str, rewrite: Callable[[str], str]) -> list[DatasetItem]:
        """`rewrite` every accepted item's caption ("" for none) in one transaction; answers the items it changed."""
        changed: list[DatasetItem] = []
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            if dataset.status != "ready":
                raise Conflict(f"dataset {dataset_id} is {dataset.status}; edit captions when it is ready")
            items, _ = datasets_repo.list_items(session=session, dataset_id=dataset_id, status="ok")
            for item in items:
                if not item.file:
                    continue
                text = rewrite(item.caption or "").strip()
                if text == (item.caption or ""):
                    continue
                self._write_caption(dataset_id, item, text)
                changed.append(item)
            session.commit()
        if changed:
            self.write_manifest(dataset_id)
        return changed

    def image_dir(self, dataset: Dataset) -> Path:
        return dataset_image_dir(sessions=self.sessions, store=self.store, dataset=dataset)

    def kohya_config(self, dataset: Dataset, options: KohyaOptions) -> str:
        if dataset.kind != "image":
            raise Invalid("kohya configs are for image datasets", param="format")
        if dataset.status != "ready":
            raise Conflict(f"dataset {dataset.id} is {dataset.status}")
        with self.sessions() as session:
            items, _ = datasets_repo.list_items(session=session, dataset_id=dataset.id, status="ok")
        sizes = [(item.width, item.height) for item in items if item.width and item.height]
        return kohya_dataset_config(self.image_dir(dataset), options, image_sizes=sizes)

    def kohya_config_for(self, *, owner_id: str, dataset_id: str, options: KohyaOptions) -> str:
        """`kohya_config` of `owner_id`'s dataset; without `class_tokens`, its trigger word is the class token."""
        dataset = self.get(owner_id=owner_id, dataset_id=dataset_id)
        if options.class_tokens is None:
            options = dataclasses.replace(options, class_tokens=dataset.trigger_word)
        return self.kohya_config(dataset, options)

    def delete(self, *, owner_id: str, dataset_id: str) -> None:
        with self.sessions() as session:
            dataset = datasets_repo.require_dataset(session=session, owner_id=owner_id, dataset_id=dataset_id)
            if dataset.active_job_id is not None:
                self.jobs.cancel(dataset.active_job_id)
            datasets_repo.delete_dataset(session=session, dataset=dataset)
            session.commit()
        self.store.delete(dataset_prefix(dataset_id))


def _stats(dataset: Dataset, accepted: list[tuple[int, int, bool]]) -> dict[str, Any]:
    """A dataset's numbers; `accepted` holds (width, height, has a caption) of each accepted item of an image one."""
    if dataset.kind == "text":
        return {"examples": dataset.accepted, "format": dataset.text_format, "total_bytes": dataset.total_bytes}
    histogram = Counter(resolution_bucket(width, height) for width, height, _ in accepted)
    captioned = sum(1 for _, _, has_caption in accepted if has_caption)
    return {
        "accepted": dataset.accepted,
        "rejected": dataset.rejected,
        "duplicates": dataset.duplicates,
        "skipped": dataset.skipped,
        "total_bytes": dataset.total_bytes,
        "captioned": captioned,
        "caption_coverage": round(captioned / len(accepted), 4) if accepted else 0.0,
        "resolution_histogram": dict(sorted(histogram.items())),
    }


def replace_in_caption(find: str, replace: str) -> Callable[[str], str]:
    """A caption rewrite for `edit_captions`: every occurrence of `find` (case-sensitive) becomes `replace`."""
    return lambda caption: caption.replace(find, replace)


def prepend_to_caption(text: str) -> Callable[[str], str]:
    """A caption rewrite for `edit_captions`: `text, ` first, once (`apply_trigger_word`'s rule)."""
    return lambda caption: apply_trigger_word(caption, text)


def copy_upload(source: Any, target: Path, *, limit: int, param: str) -> int:
    """Stream an upload to `target` in chunks, refusing more than `limit` bytes; returns the size."""
    size = 0
    with target.open("wb") as handle:
        while chunk := source.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"{param} is larger than {limit} bytes", param=param)
            handle.write(chunk)
    return size


def write_manifest(*, sessions: sessionmaker[Session], store: ArtifactStore, dataset_id: str) -> None:
    """manifest.json beside the images: what a trainer or a person needs to know about each file."""
    with sessions() as session:
        dataset = datasets_repo.get_dataset(session=session, dataset_id=dataset_id)
        if dataset is None:
            return
        items, _ = datasets_repo.list_items(session=session, dataset_id=dataset_id, status="ok")
        manifest = {
            "id": dataset.id,
            "name": dataset.name,
            "kind": dataset.kind,
            "trigger_word": dataset.trigger_word,
            "images": [
                {
                    "id": item.id,
                    "file": f"images/{item.file}",
                    "caption": item.caption,
                    "sha256": item.sha256,
                    "width": item.width,
                    "height": item.height,
                    "source": item.source,
                }
                for item in items
            ],
        }
    store.put_bytes(f"{dataset_prefix(dataset_id)}/manifest.json", json.dumps(manifest, indent=1).encode())


def dataset_image_dir(*, sessions: sessionmaker[Session], store: ArtifactStore, dataset: Dataset) -> Path:
    """A local folder with exactly the dataset's usable images and their captions (the store's own folder when
    it is local, a cache kept in step with the store otherwise)."""
    prefix = f"{dataset_prefix(dataset.id)}/images"
    if store.is_local:
        return store.local_folder(prefix, [])
    with sessions() as session:
        items, _ = datasets_repo.list_items(session=session, dataset_id=dataset.id, status="ok")
    names: list[str] = []
    for item in items:
        assert item.file is not None
        names.append(item.file)
        if item.caption:
            names.append(f"{Path(item.file).stem}.txt")  # as caption_key names it
    return store.local_folder(prefix, names)
