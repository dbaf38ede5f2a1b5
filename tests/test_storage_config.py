"""Settings sources, the artifact store over local and non-local fsspec filesystems, and the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from genfoundry.catalog import Catalog
from genfoundry.config import Settings
from genfoundry.errors import Invalid, NotFound
from genfoundry.storage import ArtifactStore, check_key


def test_settings_from_env_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "genfoundry.toml"
    config.write_text("port = 9001\nqueue_size = 3\n[limits]\nmax_steps = 12\n")
    monkeypatch.setenv("GENFOUNDRY_CONFIG", str(config))
    monkeypatch.setenv("GENFOUNDRY_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("GENFOUNDRY_PORT", "9002")
    settings = Settings()
    assert settings.port == 9002  # the environment wins over the file
    assert settings.queue_size == 3
    assert settings.limits.max_steps == 12
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'h').resolve()}/genfoundry.db"
    assert settings.resolved_dtype("cpu") == "float32"


@pytest.mark.parametrize("url", ["local", "memory://genfoundry-test"])
def test_store_roundtrip_and_atomic_writes(tmp_path: Path, url: str) -> None:
    store = ArtifactStore(str(tmp_path / "store") if url == "local" else url, cache_dir=tmp_path / "cache")
    store.put_bytes("images/img_1.png", b"one")
    store.put_bytes("images/img_1.png", b"two")
    assert store.get_bytes("images/img_1.png") == b"two"
    assert store.local_path("images/img_1.png").read_bytes() == b"two"
    assert store.exists("images/img_1.png")
    source = tmp_path / "adapter.bin"
    source.write_bytes(b"weights")
    store.put_file("adapters/a-1/adapter.safetensors", source)
    assert store.get_bytes("adapters/a-1/adapter.safetensors") == b"weights"
    store.delete("adapters/a-1")
    assert not store.exists("adapters/a-1/adapter.safetensors")
    with pytest.raises(NotFound):
        store.get_bytes("images/missing.png")
    if url == "local":
        assert not [p for p in (tmp_path / "store").rglob(".tmp-*")]


@pytest.mark.parametrize("url", ["local", "memory://genfoundry-test-sync"])
def test_a_write_without_fsync_is_visible_at_once_and_synced_later(tmp_path: Path, url: str) -> None:
    store = ArtifactStore(str(tmp_path / "store") if url == "local" else url, cache_dir=tmp_path / "cache")
    store.put_bytes("images/img_2.png", b"two", sync=False)
    assert store.get_bytes("images/img_2.png") == b"two"
    store.put_bytes("images/img_3.png", b"three", sync=False)
    store.delete("images/img_3.png")
    store.sync_to_disk(["images/img_2.png", "images/img_3.png"])  # one deleted meanwhile is skipped
    assert store.get_bytes("images/img_2.png") == b"two"
    if url == "local":
        assert not [p for p in (tmp_path / "store").rglob(".tmp-*")]
        with pytest.raises(ValueError, match="invalid artifact key"):
            store.sync_to_disk(["../outside.png"])


@pytest.mark.parametrize("key", ["../x.png", "/etc/passwd", "images/../../x", "images//x", "a b.png", ""])
def test_store_refuses_unsafe_keys(key: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        check_key(key)


def test_catalog_override_and_bad_family(tmp_path: Path) -> None:
    good = tmp_path / "catalog.toml"
    good.write_text(
        '[models.mine]\nfamily = "sdxl"\nsource = "/models/mine"\ndefaults = { width = 768, height = 768 }\n'
    )
    catalog = Catalog(catalog_file=good, styles_file=None, tiny_dir=tmp_path / "none")
    assert list(catalog.models) == ["mine"]
    assert catalog.get_visible("mine", "usr_any").defaults.width == 768
    with pytest.raises(NotFound):
        catalog.get_visible("stable-diffusion-v1-5", "usr_any")
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.x]\nfamily = "dalle"\nsource = "x"\n')
    with pytest.raises(Invalid, match="family"):
        Catalog(catalog_file=bad, styles_file=None, tiny_dir=tmp_path / "none")


def test_access_probes_have_their_own_names(tmp_path: Path) -> None:
    """Replicas starting together probe one store: each probe object is its own, so one replica's delete never makes
    another's read fail (which read as 'no such bucket' before)."""
    store = ArtifactStore("memory://genfoundry-probe-test", cache_dir=tmp_path / "cache")
    written: list[str] = []
    pipe_file = store.fs.pipe_file
    store.fs.pipe_file = lambda path, data, **kw: (written.append(path), pipe_file(path, data, **kw))[1]  # type: ignore[method-assign]
    store.check_access()
    store.check_access()
    assert len(set(written)) == 2
    assert not any(store.fs.exists(path) for path in written)  # both removed
