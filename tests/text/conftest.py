"""Text serving fixtures: tiny-llm from the session's tiny models, random PEFT adapters registered for alice
and bob on the live server, and an openai client per user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from genfoundry.db.session import make_engine, make_session_factory
from genfoundry.models.random_lora import make_text_lora_dir
from genfoundry.repo import users as users_repo
from genfoundry.services.text_adapters import register_text_adapter
from genfoundry.storage import ArtifactStore
from genfoundry.text.formats import TextFormat
from tests.conftest import Keys, LiveServer


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
