"""Text-to-image and image-to-image: resolve model, adapters, style and trigger words; run; record."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import BaseModelEntry, Catalog
from genfoundry.config import Limits
from genfoundry.db.tables import Adapter, Generation
from genfoundry.errors import Invalid, NotFound
from genfoundry.inference.image import GeneratedImage, ImageEngine, ImageJob, LoraSpec
from genfoundry.inference.loader import BaseModelSpec
from genfoundry.inference.model_pool import QueuePlace
from genfoundry.repo import adapters as adapters_repo
from genfoundry.repo import generations as generations_repo
from genfoundry.repo.ids import new_id
from genfoundry.schemas import SEED_MAX, ImageOptions
from genfoundry.services.image_encoding import EXTENSIONS, MEDIA_TYPES, encode_image, media_type_of_key
from genfoundry.services.image_quality import quality_steps
from genfoundry.storage import ArtifactStore

logger = logging.getLogger(__name__)

_SIZE_PATTERN = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")
# FLUX packs 2×2 latent patches over a VAE that downsamples 8×, so its sides must divide by 16.
_SIDE_MULTIPLE = {"sd15": 8, "sdxl": 8, "flux": 16}


@dataclass
class PlannedRequest:
    """Everything resolved before the engine runs: the engine job plus what the history row records."""

    job: ImageJob
    owner_id: str
    model: str
    base: BaseModelEntry
    kind: str
    prompt: str
    params: dict[str, Any] = field(default_factory=dict)
    output_format: str = "png"
    output_compression: int | None = None


@dataclass(frozen=True)
class RecordedImage:
    row: Generation
    content: bytes  # encoded as the request's output_format
    media_type: str


@dataclass(frozen=True)
class PartialImage:
    """A streamed preview, encoded as the request's output_format."""

    index: int
    content: bytes


def parse_size(size: str | None, *, base: BaseModelEntry, limits: Limits) -> tuple[int, int]:
    """The requested size, checked against the limits; none (or "auto"): the model's default, scaled down to fit
    `max_image_side` when it is larger (the limit bounds every request, not only those that name a size)."""
    if size is None or size == "auto":
        defaults = (base.defaults.width, base.defaults.height)
        multiple = _SIDE_MULTIPLE[base.family]
        scale = min(1.0, limits.max_image_side / max(defaults))
        width, height = (max(multiple, int(side * scale) // multiple * multiple) for side in defaults)
        return width, height
    match = _SIZE_PATTERN.match(size)
    if match is None:
        raise Invalid(f"size must look like '512x512', got {size!r}", param="size")
    width, height = int(match.group(1)), int(match.group(2))
    multiple = _SIDE_MULTIPLE[base.family]
    for side in (width, height):
        if side <= 0:
            raise Invalid(f"size {size!r}: width and height must be positive", param="size")
        if side % multiple:
            raise Invalid(f"size {size!r}: width and height must be multiples of {multiple}", param="size")
        if side > limits.max_image_side:
            raise Invalid(f"size {size!r}: width and height must be at most {limits.max_image_side}", param="size")
    return width, height


def add_trigger_words(prompt: str, trigger_words: list[str]) -> str:
    """Prepend each trigger word not already in the prompt (as a whole word, any case)."""
    missing = []
    for word in trigger_words:
        present = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", prompt, flags=re.IGNORECASE)
        if not present and word not in missing:
            missing.append(word)
    return ", ".join([*missing, prompt]) if missing else prompt


def _check_output_fields(options: ImageOptions) -> None:
    """OpenAI's output fields that no base here can honour, refused naming the field."""
    if options.background == "transparent":
        raise Invalid(
            "background 'transparent' needs a model that makes an alpha channel; no base here does "
            "(use 'opaque' or 'auto')",
            param="background",
        )
    if options.output_compression is not None and (options.output_format or "png") == "png":
        raise Invalid("output_compression applies to jpeg and webp only, not png", param="output_compression")


class ImageService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ArtifactStore,
        catalog: Catalog,
        engine: ImageEngine,
        limits: Limits,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self.limits = limits
        self._syncing: set[asyncio.Task[None]] = set()  # fsyncs of answered requests' files, still running

    def plan(
        self,
        *,
        owner_id: str,
        options: ImageOptions,
        init_image: Image.Image | None = None,
        strength: float | None = None,
        mask: Image.Image | None = None,
    ) -> PlannedRequest:
        """Check every field and resolve ids; raises a domain error before any work is queued."""
        limits = self.limits
        _check_output_fields(options)
        if len(options.prompt) > limits.max_prompt_chars:
            raise Invalid(f"prompt is longer than {limits.max_prompt_chars} characters", param="prompt")
        if not options.prompt.strip():
            raise Invalid("prompt must not be empty", param="prompt")
        if options.n > limits.max_images_per_request:
            raise Invalid(f"n must be between 1 and {limits.max_images_per_request}", param="n")
        if options.steps is not None and options.steps > limits.max_steps:
            raise Invalid(f"steps must be between 1 and {limits.max_steps}", param="steps")
        if len(options.loras) > limits.max_loras_per_request:
            raise Invalid(f"at most {limits.max_loras_per_request} loras per request", param="loras")
        if strength is not None and not 0.0 < strength <= 1.0:
            raise Invalid("strength must be in (0, 1]", param="strength")

        with self.sessions() as session:
            base, chosen = self._resolve_model(session, owner_id=owner_id, model=options.model)
            for ref in options.loras:
                adapter = adapters_repo.require_adapter(
                    session=session, owner_id=owner_id, adapter_id=ref.id, param="loras"
                )
                chosen.append((self._check_base(adapter, base, param="loras"), ref.weight))
            if options.industry:
                chosen.extend((adapter, 1.0) for adapter in self._industry_adapters(session, owner_id, base, options))
            session.expunge_all()

        unique: dict[str, tuple[Adapter, float]] = {}
        for adapter, weight in chosen:
            unique.setdefault(adapter.id, (adapter, weight))
        width, height = parse_size(options.size, base=base, limits=limits)
        prompt, negative = options.prompt, options.negative_prompt
        if options.style:
            prompt, negative = self.catalog.style(options.style).apply(prompt, negative)
        prompt = add_trigger_words(prompt, [a.trigger_word for a, _ in unique.values() if a.trigger_word])
        steps = options.steps or quality_steps(
            options.quality, family=base.family, default_steps=base.defaults.steps, max_steps=limits.max_steps
        )
        strength = strength if strength is not None else (1.0 if mask is not None else 0.8)
        if init_image is not None and int(steps * strength) < 1:
            # image-to-image denoises the last steps × strength steps; diffusers fails on none at all
            raise Invalid(
                f"steps × strength ({steps} × {strength:g}) leaves no denoising step; raise steps or strength",
                param="steps",
            )
        guidance = options.guidance_scale if options.guidance_scale is not None else base.defaults.guidance_scale
        first_seed = options.seed if options.seed is not None else secrets.randbelow(SEED_MAX + 1)
        seeds = tuple((first_seed + i) % (SEED_MAX + 1) for i in range(options.n))
        loras = tuple(
            LoraSpec(id=adapter.id, path=str(self.store.local_path(adapter.file_key)), weight=weight)
            for adapter, weight in unique.values()
        )
        job = ImageJob(
            base=BaseModelSpec(
                id=base.id,
                family=base.family,
                source=base.source,
                dtype=base.dtype,
                scheduler=base.defaults.scheduler,
            ),
            prompt=prompt,
            negative_prompt=negative,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance,
            seeds=seeds,
            loras=loras,
            init_image=init_image.resize((width, height)) if init_image is not None else None,
            strength=strength,
            mask=mask.resize((width, height), Image.Resampling.NEAREST) if mask is not None else None,
        )
        params: dict[str, Any] = {
            "size": f"{width}x{height}",
            "steps": steps,
            "guidance_scale": guidance,
            "loras": [{"id": lora.id, "weight": lora.weight} for lora in loras],
            "style": options.style,
            "industry": options.industry,
        }
        if init_image is not None:
            params["strength"] = job.strength
        if mask is not None:
            params["mask"] = True
        output_format = options.output_format or "png"
        # the quality that chose the steps (None: the request named them), and OpenAI's output fields
        quality = (options.quality or "auto") if options.steps is None else None
        params.update(quality=quality, output_format=output_format, background=options.background or "auto")
        if options.output_compression is not None:
            params["output_compression"] = options.output_compression
        if options.moderation is not None:  # accepted as OpenAI's; no moderation model runs here
            logger.info("moderation=%s accepted for %s; nothing is moderated here", options.moderation, owner_id)
        return PlannedRequest(
            job=job,
            owner_id=owner_id,
            model=options.model,
            base=base,
            kind="edit" if init_image is not None else "generation",
            prompt=options.prompt,
            params=params,
            output_format=output_format,
            output_compression=options.output_compression,
        )

    def _resolve_model(
        self, session: Session, *, owner_id: str, model: str
    ) -> tuple[BaseModelEntry, list[tuple[Adapter, float]]]:
        entry = self.catalog.find_visible(model, owner_id)  # a base, or one of the caller's trained models
        if entry is not None:
            return entry, []
        if model in self.catalog.text_models:
            raise Invalid(f"'{model}' is a text model; use /v1/chat/completions", param="model")
        adapter = adapters_repo.get_adapter(session=session, owner_id=owner_id, adapter_id=model)
        if adapter is None:
            raise NotFound(f"The model '{model}' does not exist", param="model")
        if adapter.family == "text":
            raise Invalid(f"'{model}' is a text adapter; use /v1/chat/completions", param="model")
        return self.catalog.get_visible(adapter.base_id, owner_id), [(adapter, 1.0)]

    @staticmethod
    def _check_base(adapter: Adapter, base: BaseModelEntry, *, param: str) -> Adapter:
        if adapter.base_id != base.id:
            raise Invalid(f"adapter '{adapter.id}' is for base '{adapter.base_id}', not '{base.id}'", param=param)
        return adapter

    @staticmethod
    def _industry_adapters(
        session: Session, owner_id: str, base: BaseModelEntry, options: ImageOptions
    ) -> list[Adapter]:
        industry = options.industry or ""
        found = adapters_repo.find_adapters_by_tag(
            session=session, owner_id=owner_id, base_id=base.id, key="industry", value=industry
        )
        if not found:
            raise Invalid(
                f"no adapter tagged industry={industry} for base '{base.id}'; tag one when importing it",
                param="industry",
            )
        return found[:1]

    async def generate(
        self,
        *,
        owner_id: str,
        options: ImageOptions,
        place: QueuePlace | None = None,
        init_image: Image.Image | None = None,
        strength: float | None = None,
        mask: Image.Image | None = None,
    ) -> list[RecordedImage]:
        """One request, planned and recorded in a worker thread (database and files), run on the engine: what every
        route that makes images calls (/v1/images, `model="auto"`, the seed systems' routes)."""
        planned = await self._plan(owner_id, options, init_image, strength, mask)
        results = await self.run(planned, place)
        return await self._record_and_sync_later(planned, results)

    async def _record_and_sync_later(
        self, planned: PlannedRequest, results: list[GeneratedImage]
    ) -> list[RecordedImage]:
        """`record` in a worker thread without the files' fsync, which a task runs after it: the answer waits for
        the files and rows to be visible (a client fetches the URL and lists its history at once), not for the disk.
        """
        recorded = await anyio.to_thread.run_sync(functools.partial(self.record, planned, results, sync=False))
        task = asyncio.create_task(
            anyio.to_thread.run_sync(self.store.sync_to_disk, [image.row.image_key for image in recorded])
        )
        self._syncing.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._synced)
        return recorded

    def _synced(self, task: asyncio.Task[None]) -> None:
        self._syncing.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("could not fsync generated images: %s", error)

    async def _plan(
        self,
        owner_id: str,
        options: ImageOptions,
        init_image: Image.Image | None,
        strength: float | None,
        mask: Image.Image | None,
    ) -> PlannedRequest:
        """`plan` off the event loop when it reads the database or files (adapters, a trained model) or resizes an
        image; on it when it only checks fields against a catalog base, which costs less than a worker-thread hop."""
        plan = functools.partial(
            self.plan, owner_id=owner_id, options=options, init_image=init_image, strength=strength, mask=mask
        )
        reads_nothing = (
            options.model in self.catalog.models
            and not options.loras
            and not options.industry
            and init_image is None
            and mask is None
        )
        return plan() if reads_nothing else await anyio.to_thread.run_sync(plan)

    async def open_stream(
        self,
        *,
        owner_id: str,
        options: ImageOptions,
        place: QueuePlace | None = None,
        init_image: Image.Image | None = None,
        strength: float | None = None,
        mask: Image.Image | None = None,
    ) -> tuple[PlannedRequest, AsyncIterator[PartialImage | RecordedImage]]:
        """Plan and queue now (bad input and a full queue raise here, and the job takes `place`), then yield the
        `options.partial_images` previews as the engine decodes them and last the recorded image."""
        planned = await self._plan(owner_id, options, init_image, strength, mask)
        if options.n != 1:
            raise Invalid("stream: true makes one image; n must be 1 (send one request per image)", param="n")
        loop = asyncio.get_running_loop()
        previews: asyncio.Queue[PartialImage | None] = asyncio.Queue()
        fmt, compression = planned.output_format, planned.output_compression

        def on_partial(index: int, image: Image.Image) -> None:  # on the base's worker thread
            preview = PartialImage(index=index, content=encode_image(image, fmt, compression))
            loop.call_soon_threadsafe(previews.put_nowait, preview)

        if options.partial_images:
            job = dataclasses.replace(planned.job, partial_images=options.partial_images, on_partial=on_partial)
            planned = dataclasses.replace(planned, job=job)

        def ended(done: asyncio.Future[list[GeneratedImage]]) -> None:
            if not done.cancelled():
                done.exception()  # marks it seen: a client that left never awaits it
            previews.put_nowait(None)  # after every preview: scheduled on the same loop, in order

        future = self.engine.submit(planned.job, place)
        future.add_done_callback(ended)
        return planned, self._stream_items(planned, future, previews)

    async def _stream_items(
        self,
        planned: PlannedRequest,
        future: asyncio.Future[list[GeneratedImage]],
        previews: asyncio.Queue[PartialImage | None],
    ) -> AsyncIterator[PartialImage | RecordedImage]:
        while (preview := await previews.get()) is not None:
            yield preview
        for recorded in await self._record_and_sync_later(planned, future.result()):
            yield recorded

    async def run(self, planned: PlannedRequest, place: QueuePlace | None = None) -> list[GeneratedImage]:
        """The engine's images; `place`: the queue place the request held before planning (`hold_place`)."""
        return await self.engine.generate(planned.job, place)

    def run_sync(self, planned: PlannedRequest) -> list[GeneratedImage]:
        return self.engine.generate_sync(planned.job)

    def record(
        self, planned: PlannedRequest, images: list[GeneratedImage], *, sync: bool = True
    ) -> list[RecordedImage]:
        """Store each image (in the request's output_format) under a generated key and add its history row; on
        failure, remove what was written. `sync` False: the files are not fsynced yet (`ArtifactStore.put_bytes`)."""
        job = planned.job
        recorded: list[RecordedImage] = []
        written: list[str] = []
        try:
            with self.sessions() as session:
                for result in images:
                    generation_id = new_id("img")
                    key = f"images/{generation_id}.{EXTENSIONS[planned.output_format]}"
                    content = encode_image(result.image, planned.output_format, planned.output_compression)
                    self.store.put_bytes(key, content, sync=sync)
                    written.append(key)
                    row = generations_repo.create_generation(
                        session=session,
                        id=generation_id,
                        owner_id=planned.owner_id,
                        kind=planned.kind,
                        model=planned.model,
                        base_id=planned.base.id,
                        prompt=planned.prompt,
                        revised_prompt=job.prompt,
                        negative_prompt=job.negative_prompt,
                        params=planned.params,
                        seed=result.seed,
                        width=result.image.width,
                        height=result.image.height,
                        image_key=key,
                        generation_time_s=round(result.generation_time_s, 4),
                    )
                    recorded.append(
                        RecordedImage(row=row, content=content, media_type=MEDIA_TYPES[planned.output_format])
                    )
                session.commit()
        except BaseException:
            for key in written:
                self.store.delete(key)
            raise
        return recorded

    # -- history -----------------------------------------------------------------------------------

    def list_generations(
        self,
        *,
        owner_id: str,
        limit: int,
        after: str | None,
        favorite: bool | None = None,
        model: str | None = None,
        adapter: str | None = None,
        min_rating: int | None = None,
        text: str | None = None,
    ) -> tuple[list[Generation], bool]:
        """Newest first; `after` is the last id of the previous page; the filters combine (all must hold)."""
        with self.sessions() as session:
            return generations_repo.list_generations(
                session=session,
                owner_id=owner_id,
                limit=limit,
                after=after,
                favorite=favorite,
                model=model,
                adapter=adapter,
                min_rating=min_rating,
                text=(text or "").strip() or None,
            )

    def get_generation(self, *, owner_id: str, generation_id: str) -> Generation:
        with self.sessions() as session:
            return generations_repo.require_generation(session=session, owner_id=owner_id, generation_id=generation_id)

    def update_generation(self, *, owner_id: str, generation_id: str, changes: dict[str, Any]) -> Generation:
        """Set the given fields (favorite, rating, feedback) of `owner_id`'s generation."""
        with self.sessions() as session:
            row = generations_repo.require_generation(session=session, owner_id=owner_id, generation_id=generation_id)
            for name, value in changes.items():
                setattr(row, name, value)
            session.commit()
            return row

    def image_file(self, image_id: str, *, owner_id: str | None) -> tuple[bytes, str]:
        """The image of `owner_id`'s generation and its content type; `owner_id` None means access was proven by a
        signed URL."""
        with self.sessions() as session:
            if owner_id is None:
                row = generations_repo.get_generation(session=session, generation_id=image_id)
                if row is None:
                    raise NotFound(f"No image with id '{image_id}'")
            else:
                row = generations_repo.require_generation(session=session, owner_id=owner_id, generation_id=image_id)
            return self.store.get_bytes(row.image_key), media_type_of_key(row.image_key)

    def delete(self, *, owner_id: str, generation_id: str) -> None:
        with self.sessions() as session:
            generation = generations_repo.require_generation(
                session=session, owner_id=owner_id, generation_id=generation_id
            )
            key = generation.image_key
            generations_repo.delete_generation(session=session, generation=generation)
            session.commit()
        self.store.delete(key)
