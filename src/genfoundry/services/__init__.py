"""Services: the use cases the API and CLI share (they combine repo, storage, catalog and engines)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import Catalog, open_catalog
from genfoundry.config import Settings
from genfoundry.db.session import make_engine, make_session_factory, upgrade_database
from genfoundry.diagrams.renderer import make_renderer
from genfoundry.hub import use_hub_defaults
from genfoundry.inference.caption import load_captioner_catalog
from genfoundry.inference.image import ImageEngine
from genfoundry.inference.pipeline_speed import check_image_speed, image_speed_warnings
from genfoundry.inference.text import TextEngine
from genfoundry.inference.thread_plan import server_thread_plan
from genfoundry.jobs.env import JobEnv
from genfoundry.jobs.executors import ThreadExecutor, make_executor
from genfoundry.jobs.runner import JobRunner
from genfoundry.services.adapters import AdapterService
from genfoundry.services.authentication import Authenticator
from genfoundry.services.auto_chat import AutoChat
from genfoundry.services.batch_requests import BatchRequests
from genfoundry.services.batches import BatchService, register_batch_jobs
from genfoundry.services.classifiers import ClassifierService, shared_router_encoder
from genfoundry.services.conversations import ConversationService
from genfoundry.services.dataset_jobs import register_dataset_jobs
from genfoundry.services.datasets import DatasetService
from genfoundry.services.default_models import DefaultModels, pick_default_models, with_defaults
from genfoundry.services.diagram_generation import DiagramGenerator
from genfoundry.services.diagrams import DiagramService
from genfoundry.services.embeddings import EmbeddingService
from genfoundry.services.fine_tuning.registry import register_fine_tuning_jobs
from genfoundry.services.fine_tuning.service import FineTuningService
from genfoundry.services.images import ImageService
from genfoundry.services.jobs import JobService
from genfoundry.services.text import TextService
from genfoundry.services.urls import UrlSigner, load_or_create_secret
from genfoundry.storage import ArtifactStore, open_store

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings  # with the default models it leaves unset filled in from `defaults`
    defaults: DefaultModels
    db_engine: Engine
    sessions: sessionmaker[Session]
    authenticator: Authenticator
    store: ArtifactStore
    catalog: Catalog
    image_engine: ImageEngine
    images: ImageService
    adapters: AdapterService
    signer: UrlSigner
    jobs: JobRunner
    user_jobs: JobService
    datasets: DatasetService
    fine_tuning: FineTuningService
    classifiers: ClassifierService
    embeddings: EmbeddingService
    diagrams: DiagramService
    text_engine: TextEngine
    text: TextService
    diagram_generator: DiagramGenerator
    auto_chat: AutoChat
    conversations: ConversationService
    batches: BatchService

    def close(self) -> None:
        self.jobs.shutdown()
        self.image_engine.close()
        self.diagrams.close()
        self.text_engine.close()
        self.classifiers.close()
        self.db_engine.dispose()


def build_services(settings: Settings) -> Services:
    """Open the database (migrated), the store, the catalog and the engines for `settings`; default models the
    settings leave unset are picked from what this machine has."""
    use_hub_defaults()
    settings.home.mkdir(parents=True, exist_ok=True)
    db_engine = make_engine(settings.resolved_database_url)
    upgrade_database(db_engine)
    sessions = make_session_factory(db_engine)
    store = open_store(settings)
    if not store.is_local:
        store.check_access()  # wrong credentials or a missing bucket: a clear error now, not at the first upload
    catalog = open_catalog(settings)
    captioner_specs = load_captioner_catalog(settings.captioners_file, settings.tiny_models_dir)
    defaults = pick_default_models(settings, catalog, captioner_specs)
    settings = with_defaults(settings, defaults)
    device = settings.resolved_device()
    check_image_speed(settings.image_speed, lambda: device)
    for warning in image_speed_warnings(settings.image_speed):
        logger.warning(warning)
    threads = server_thread_plan(settings)
    image_engine = ImageEngine(
        device=device,
        dtype=settings.resolved_dtype(device),
        memory_budget_bytes=settings.memory_budget_bytes,
        max_queue=settings.queue_size,
        max_batch_size=settings.max_batch_size,
        batch_timeout_s=settings.batch_timeout_ms / 1000,
        threads=threads.image,
        max_resident_adapters=settings.max_resident_adapters,
        speed=settings.image_speed,
    )
    adapters = AdapterService(
        sessions=sessions, store=store, catalog=catalog, engine=image_engine, work_dir=settings.home / "tmp"
    )
    images = ImageService(sessions=sessions, store=store, catalog=catalog, engine=image_engine, limits=settings.limits)
    secret = settings.url_secret.get_secret_value().encode() if settings.url_secret else None
    signer = UrlSigner(secret or load_or_create_secret(settings.home / "secret.key"))
    # Job processes get the device and dtype resolved here, so they need not import torch just to find them, and
    # their share of the cores; the router's encoder (here and in classifier jobs) gets its own.
    router = settings.router.model_copy(update={"encoder_threads": settings.router.encoder_threads or threads.router})
    job_settings = settings.model_copy(
        update={
            "device": device,
            "dtype": settings.resolved_dtype(device),
            "torch_threads": threads.job,
            "router": router,
        }
    )
    env = JobEnv(settings=job_settings, sessions=sessions, store=store, catalog=catalog)
    # Batches run on threads of this process (the server's engines), whatever executor training uses.
    server_executor = ThreadExecutor(env=env, heartbeat_s=settings.jobs.heartbeat_s)
    jobs = JobRunner(
        sessions=sessions, settings=settings.jobs, executor=make_executor(env), server_executor=server_executor
    )
    register_dataset_jobs(jobs)
    register_fine_tuning_jobs(jobs)
    datasets = DatasetService(
        sessions=sessions,
        store=store,
        settings=settings.datasets,
        jobs=jobs,
        work_dir=settings.home / "tmp",
        captioner_ids=frozenset(captioner_specs),
    )
    classifiers = ClassifierService(
        sessions=sessions,
        store=store,
        settings=settings.router,
        encoder=shared_router_encoder(env),  # classifier jobs on the thread executor use it too
    )
    text_settings = settings.text
    text_engine = TextEngine(
        device=device,
        dtype=settings.resolved_dtype(device),
        memory_budget_bytes=int((text_settings.memory_budget_gb or settings.memory_budget_gb) * 1024**3),
        max_queue=settings.queue_size,
        max_batch_size=text_settings.max_batch_size,
        batch_timeout_s=settings.batch_timeout_ms / 1000,
        max_adapters_per_base=text_settings.max_loaded_adapters,
        threads=threads.text,
    )
    text = TextService(sessions=sessions, store=store, catalog=catalog, engine=text_engine, settings=text_settings)
    # PlantUML starts on the first check or render, not here.
    diagrams = DiagramService(
        renderer=make_renderer(settings.diagrams, work_dir=settings.home / "cache" / "plantuml"), store=store
    )
    diagram_generator = DiagramGenerator(
        text=text,
        diagrams=diagrams,
        settings=settings.assistant,
        default_model=settings.assistant.diagram_model or defaults.text_model.model,
    )
    auto_chat = AutoChat(
        classifiers=classifiers,
        text=text,
        images=images,
        diagrams=diagram_generator,
        signer=signer,
        image_model=defaults.image_model.model,
        text_model=defaults.text_model.model,
    )
    embeddings = EmbeddingService(encoder=classifiers.encoder, catalog=catalog)
    batches = BatchService(
        sessions=sessions,
        datasets=datasets,
        runner=jobs,
        requests=BatchRequests(images=images, text=text, auto_chat=auto_chat, embeddings=embeddings, signer=signer),
    )
    register_batch_jobs(jobs, env, batches)
    return Services(
        settings=settings,
        defaults=defaults,
        db_engine=db_engine,
        sessions=sessions,
        authenticator=Authenticator(engine=db_engine, sessions=sessions, host=settings.host),
        store=store,
        catalog=catalog,
        image_engine=image_engine,
        images=images,
        adapters=adapters,
        signer=signer,
        jobs=jobs,
        user_jobs=JobService(sessions=sessions, runner=jobs),
        datasets=datasets,
        fine_tuning=FineTuningService(env=env, runner=jobs),
        classifiers=classifiers,
        embeddings=embeddings,
        diagrams=diagrams,
        text_engine=text_engine,
        text=text,
        diagram_generator=diagram_generator,
        auto_chat=auto_chat,
        conversations=ConversationService(sessions=sessions, diagrams=diagrams),
        batches=batches,
    )
