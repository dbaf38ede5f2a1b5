"""Request planning rules (sizes, trigger words), the all-or-nothing history write, and the files' fsync after the
answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from PIL import Image

from genfoundry.catalog import BaseModelEntry, GenerationDefaults
from genfoundry.config import Limits, Settings
from genfoundry.errors import Invalid
from genfoundry.inference.image import GeneratedImage
from genfoundry.repo import generations as generations_repo
from genfoundry.repo import users as users_repo
from genfoundry.schemas import ImageOptions
from genfoundry.services import build_services
from genfoundry.services.images import add_trigger_words, parse_size
from tests.conftest import make_home

SD15 = BaseModelEntry(id="b", family="sd15", source="x", defaults=GenerationDefaults(width=512, height=768))
FLUX = BaseModelEntry(id="f", family="flux", source="x")


def test_parse_size() -> None:
    limits = Limits(max_image_side=1024)
    assert parse_size(None, base=SD15, limits=limits) == (512, 768)
    assert parse_size("auto", base=SD15, limits=limits) == (512, 768)
    assert parse_size("64x128", base=SD15, limits=limits) == (64, 128)
    assert parse_size(" 64 X 64 ", base=SD15, limits=limits) == (64, 64)
    for bad in ("64", "64x", "x64", "-64x64", "64x64x64", "1e3x64", "1032x64", "72x64x"):
        with pytest.raises(Invalid):
            parse_size(bad, base=SD15, limits=limits)
    assert parse_size("48x48", base=SD15, limits=limits) == (48, 48)
    with pytest.raises(Invalid, match="multiples of 16"):
        parse_size("48x40", base=FLUX, limits=limits)


def test_defaults_over_the_limits_are_brought_within_them(tmp_path: Path, tiny_dir: Path) -> None:
    """A request that names no size or steps gets the model's defaults, but never more than the server allows."""
    small = Limits(max_image_side=256)
    assert parse_size(None, base=SD15, limits=small) == (168, 256)  # 512x768 scaled by 1/3, down to multiples of 8
    assert parse_size(None, base=SD15, limits=Limits(max_image_side=8)) == (8, 8)
    assert parse_size(None, base=FLUX, limits=Limits(max_image_side=100)) == (96, 96)  # 512x512, in multiples of 16
    with pytest.raises(Invalid):
        parse_size("512x512", base=SD15, limits=small)  # a size the caller names is still refused, not shrunk
    limits = Limits(max_image_side=32, max_steps=2)
    services = build_services(Settings(home=make_home(tmp_path, tiny_dir), limits=limits))
    try:
        with services.sessions() as session:
            owner_id = users_repo.get_or_create_local_user(session=session).id
            session.commit()
        planned = services.images.plan(owner_id=owner_id, options=ImageOptions(model="tiny-sd15", prompt="x"))
        assert (planned.job.width, planned.job.height, planned.job.steps) == (32, 32, 2)  # defaults: 64x64, 4 steps
        with pytest.raises(Invalid, match="steps"):
            services.images.plan(owner_id=owner_id, options=ImageOptions(model="tiny-sd15", prompt="x", steps=3))
    finally:
        services.close()


def test_trigger_words_added_once_as_whole_words() -> None:
    assert add_trigger_words("a cat", ["sks"]) == "sks, a cat"
    assert add_trigger_words("a SKS cat", ["sks"]) == "a SKS cat"
    assert add_trigger_words("a tasks list", ["sks"]) == "sks, a tasks list"
    assert add_trigger_words("a cat", ["sks", "ohwx", "sks"]) == "sks, ohwx, a cat"
    assert add_trigger_words("a cat", []) == "a cat"
    assert add_trigger_words("c++ logo", ["c++"]) == "c++ logo"


def test_record_writes_nothing_when_history_fails(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings(home=make_home(tmp_path, tiny_dir)))
    try:
        with services.sessions() as session:
            owner_id = users_repo.get_or_create_local_user(session=session).id
            session.commit()
        planned = services.images.plan(
            owner_id=owner_id, options=ImageOptions(model="tiny-sd15", prompt="x", n=2, seed=1)
        )
        images = [GeneratedImage(image=Image.new("RGB", (64, 64)), seed=s, generation_time_s=0.1) for s in (1, 2)]
        calls = 0
        real_create = generations_repo.create_generation

        def failing_create(**fields: object) -> object:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("disk full")
            return real_create(**fields)  # type: ignore[arg-type]

        monkeypatch.setattr(generations_repo, "create_generation", failing_create)
        with pytest.raises(RuntimeError, match="disk full"):
            services.images.record(planned, images)
        assert not list((services.settings.home / "artifacts").rglob("*.png"))
        with services.sessions() as session:
            rows, _ = generations_repo.list_generations(session=session, owner_id=owner_id, limit=10)
        assert rows == []
    finally:
        services.close()


def test_generate_answers_with_files_and_rows_visible_and_fsyncs_the_files_after(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings(home=make_home(tmp_path, tiny_dir)))
    synced: list[str] = []
    monkeypatch.setattr(services.store, "sync_to_disk", synced.extend)
    options = ImageOptions(model="tiny-sd15", prompt="x", n=2, seed=1, steps=1, size="64x64")

    async def generate_and_wait_for_the_fsync() -> list[str]:
        recorded = await services.images.generate(owner_id=users_repo.LOCAL_USER_ID, options=options)
        keys = [image.row.image_key for image in recorded]
        assert all(services.store.exists(key) for key in keys)  # before the fsync: what the answer promises
        with services.sessions() as session:
            rows, _ = generations_repo.list_generations(session=session, owner_id=users_repo.LOCAL_USER_ID, limit=5)
        assert sorted(row.image_key for row in rows) == sorted(keys)
        deadline = time.monotonic() + 60
        while len(synced) < len(keys) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return keys

    try:
        with services.sessions() as session:
            users_repo.get_or_create_local_user(session=session)
            session.commit()
        keys = asyncio.run(generate_and_wait_for_the_fsync())
        assert sorted(synced) == sorted(keys)
    finally:
        services.close()
