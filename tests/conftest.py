"""Shared fixtures: tiny models built once per session, a real uvicorn server on a loopback port, text adapters
registered on it, and text-training data. Plain helpers live in tests/helpers.py."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from PIL import Image

from genfoundry.app import create_app
from genfoundry.config import DatasetSettings, Settings
from genfoundry.db.session import make_engine, make_session_factory
from genfoundry.models.random_lora import make_lora_file, make_text_lora_dir
from genfoundry.repo import users as users_repo
from genfoundry.services.local import open_database
from genfoundry.services.text_adapters import register_text_adapter
from genfoundry.storage import ArtifactStore
from genfoundry.text.formats import TextFormat
from tests.helpers import write_pairs
from tests.postgres_server import postgres_installed, running_postgres
from tests.s3_server import S3_BUCKET, S3Server, running_s3


@pytest.fixture(scope="session", autouse=True)
def shared_encoder_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ONNX export of the router's encoder for the whole session, every home and CLI subprocess included."""
    cache = tmp_path_factory.mktemp("encoders")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENFOUNDRY_ROUTER__ENCODER_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-sd15 / tiny-sdxl / tiny-flux built once, plus the registry the catalog reads."""
    from genfoundry.models.tiny_registry import build_and_register_tiny

    target = tmp_path_factory.mktemp("tiny") / "tiny"
    list(build_and_register_tiny(target))
    return target


def make_home(base: Path, tiny_dir: Path) -> Path:
    """A fresh home whose tiny-model folder points at the session's built models."""
    home = base / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "tiny").symlink_to(tiny_dir, target_is_directory=True)
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: Settings) -> LiveServer:
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{settings.port}", settings, server, thread)


@dataclass
class Keys:
    alice: str
    bob: str
    revoked: str
    admin: str


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Iterator[LiveServer]:
    """One server for the session, in key mode (keys exist), on the tiny models."""
    home = make_home(tmp_path_factory.mktemp("live"), tiny_dir)
    # Dataset URLs may point at 127.0.0.2 only (the tests' image server); 127.0.0.1 stays refused.
    datasets = DatasetSettings(allowed_fetch_networks=["127.0.0.2/32"], fetch_timeout_s=5)
    settings = Settings(home=home, port=free_port(), queue_size=16, batch_timeout_ms=30, datasets=datasets)
    server = start_server(settings)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keys(live: LiveServer) -> Keys:
    with open_database(live.settings) as session:
        alice = users_repo.create_key(session=session, name="alice").key
        bob = users_repo.create_key(session=session, name="bob").key
        revoked = users_repo.create_key(session=session, name="mallory")
        users_repo.revoke_key(session=session, key_id=revoked.record.id)
        admin = users_repo.create_key(session=session, name="root", is_admin=True).key
        session.commit()
    return Keys(alice=alice, bob=bob, revoked=revoked.key, admin=admin)


@pytest.fixture
def alice(live: LiveServer, keys: Keys) -> Iterator[httpx.Client]:
    with live.client(keys.alice) as client:
        yield client


@pytest.fixture
def bob(live: LiveServer, keys: Keys) -> Iterator[httpx.Client]:
    with live.client(keys.bob) as client:
        yield client


@dataclass
class LoraFiles:
    sd15_a: Path
    sd15_b: Path
    sdxl: Path
    flux: Path


@pytest.fixture(scope="session")
def lora_files(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> LoraFiles:
    out = tmp_path_factory.mktemp("loras")
    return LoraFiles(
        sd15_a=make_lora_file(tiny_dir / "sd15", "sd15", out / "a", seed=1),
        sd15_b=make_lora_file(tiny_dir / "sd15", "sd15", out / "b", seed=2),
        sdxl=make_lora_file(tiny_dir / "sdxl", "sdxl", out / "xl", seed=3),
        flux=make_lora_file(tiny_dir / "flux", "flux", out / "flux", seed=4),
    )


def image_bytes(color: tuple[int, int, int], size: tuple[int, int] = (48, 32), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


PAGES: dict[str, tuple[int, str, bytes]] = {
    "/red.png": (200, "image/png", image_bytes((255, 0, 0))),
    "/blue.jpg": (200, "image/jpeg", image_bytes((0, 0, 255), fmt="JPEG")),
    "/red-again.png": (200, "image/png", image_bytes((255, 0, 0))),
    "/page.html": (200, "text/html", b"<html><body>not an image</body></html>"),
    "/fake.jpg": (200, "image/jpeg", b"<html>pretending</html>"),
}


class ImageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/x.png")
            self.end_headers()
            return
        if self.path == "/slow.png":  # one byte a second: only the download deadline ends it
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(20):
                try:
                    self.wfile.write(b"\x89")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)
            return
        if self.path == "/huge.png":  # declares 5 GB, sends nothing
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(5 * 10**9))
            self.end_headers()
            return
        if self.path == "/to-loopback":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/x.png")
            self.end_headers()
            return
        status, content_type, body = PAGES.get(self.path, (404, "text/plain", b"missing"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.2", 0), ImageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()


# Text models: tiny-llm from the session's tiny set, random PEFT adapters registered for alice and bob on the
# live server, and an openai client per user.
@pytest.fixture(scope="session")
def tiny_llm(tiny_dir: Path) -> Path:
    """The tiny-llm folder `models build-tiny` wrote (a random Llama with a locally trained tokenizer)."""
    return tiny_dir / "tiny-llm"


@dataclass(frozen=True)
class TextAdapters:
    alice_a: str
    alice_b: str
    alice_plain: str  # adapter a's weights, registered with the plain prompt format
    bob: str


@pytest.fixture(scope="session")
def lora_dirs(tmp_path_factory: pytest.TempPathFactory, tiny_llm: Path) -> dict[str, Path]:
    """Three random LoRA folders on tiny-llm (different seeds, non-zero B)."""
    out = tmp_path_factory.mktemp("text-loras")
    return {
        name: make_text_lora_dir(tiny_llm, out / name, seed=seed) for name, seed in (("a", 11), ("b", 12), ("c", 13))
    }


@pytest.fixture(scope="session")
def text_adapters(live: LiveServer, keys: Keys, lora_dirs: dict[str, Path]) -> TextAdapters:
    """Registered through the same function SFT jobs use: two for alice, one for bob."""
    settings = live.settings
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    store = ArtifactStore(settings.resolved_storage_url, cache_dir=settings.home / "cache" / "artifacts")
    chat_format = TextFormat(base_id="tiny-llm", prompt_format="chat_template")
    plain_format = TextFormat(base_id="tiny-llm", prompt_format="plain")
    with sessions() as session:
        alice = users_repo.authenticate(session=session, key=keys.alice)
        bob = users_repo.authenticate(session=session, key=keys.bob)
        assert alice is not None and bob is not None
        alice_id, bob_id = alice.id, bob.id
        session.commit()

    def register(owner_id: str, name: str, folder: Path, text_format: TextFormat = chat_format) -> str:
        adapter = register_text_adapter(
            sessions=sessions,
            store=store,
            owner_id=owner_id,
            base_id="tiny-llm",
            name=name,
            peft_dir=folder,
            text_format=text_format,
            tags={"test": "text"},
        )
        return str(adapter.id)

    try:
        ids = {
            "alice_a": register(alice_id, "alice a", lora_dirs["a"]),
            "alice_b": register(alice_id, "alice b", lora_dirs["b"]),
            "alice_plain": register(alice_id, "alice plain", lora_dirs["a"], plain_format),
            "bob": register(bob_id, "bob", lora_dirs["c"]),
        }
    finally:
        engine.dispose()
    return TextAdapters(**ids)


@pytest.fixture
def alice_openai(live: LiveServer, keys: Keys) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=keys.alice, max_retries=0, timeout=120) as client:
        yield client


@pytest.fixture
def bob_openai(live: LiveServer, keys: Keys) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=keys.bob, max_retries=0, timeout=120) as client:
        yield client


# Text training: tiny-llm built on its own (a few seconds, apart from the full tiny set) and scenario -> PlantUML
# pairs as JSONL.


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from genfoundry.models.tiny_llm import build_tiny_llm

    return Path(build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "tiny-llm"))


@pytest.fixture(scope="session")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs") / "train.jsonl", 24)


@pytest.fixture(scope="session")
def make_pairs() -> Callable[..., Path]:
    """write_pairs, for tests that need their own file (chat lines, another count)."""
    return write_pairs


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of the module's own; its URL."""
    if not postgres_installed():
        pytest.skip("PostgreSQL server binaries not installed (scripts/ensure-postgres.sh installs them)")
    with running_postgres(free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """An S3 protocol server (moto) of the module's own, with the bucket S3_BUCKET made."""
    with running_s3(free_port()) as server:
        server.client().create_bucket(Bucket=S3_BUCKET)
        yield server
