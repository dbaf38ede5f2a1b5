"""The hostile ZIP corpus through the real server: a per-file verdict, nothing written outside the dataset."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.datasets.zip_corpus import (
    Entry,
    animated_gif,
    cmyk_jpeg,
    png_declaring,
    png_gray16,
    tiny_png,
    write_many,
    write_zero_bomb,
    write_zip,
)
from tests.helpers import assert_error


def files_outside_datasets(home: Path) -> set[Path]:
    datasets = home / "artifacts" / "datasets"
    return {
        p
        for p in home.rglob("*")
        if p.is_file() and datasets not in p.parents and not p.name.startswith("genfoundry.db")
    }


def post_zip(client: httpx.Client, path: Path) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post("/v1/datasets", files={"file": ("up.zip", handle)}, data={"name": "hostile"})


def test_hostile_entries_get_a_verdict_each(live: LiveServer, alice: httpx.Client, tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "inner.zip", [Entry("x.png", tiny_png(1))]).read_bytes()
    archive = write_zip(
        tmp_path / "hostile.zip",
        [
            Entry("good.png", tiny_png(7)),
            Entry("../../escape.jpg", tiny_png(2)),
            Entry("/etc/absolute.jpg", tiny_png(3)),
            Entry("link.jpg", b"/etc/passwd", mode=stat.S_IFLNK | 0o777),
            Entry("inner.zip", inner),
            Entry("empty.jpg", b""),
            Entry("truncated.jpg", cmyk_jpeg()[:60]),
            Entry("huge.png", png_declaring(100000, 100000)),
            Entry("text.jpg", b"just some text"),
            Entry("anim.gif", animated_gif()),
            Entry("cmyk.jpg", cmyk_jpeg()),
            Entry("gray16.png", png_gray16()),
            Entry("caf\xe9.png".encode("latin-1"), tiny_png(4)),
            Entry("a/a.png", tiny_png(5)),
            Entry("b/a.png", tiny_png(6)),
        ],
    )
    before = files_outside_datasets(live.settings.home)
    response = post_zip(alice, archive)
    assert response.status_code == 201, response.text
    report = {item["source"]: item for item in response.json()["report"]["items"]}
    for source in ("good.png", "anim.gif", "cmyk.jpg", "gray16.png", "a/a.png", "b/a.png"):
        assert report[source]["status"] == "ok", report[source]
    latin = next(item for name, item in report.items() if name.startswith("caf"))
    assert latin["status"] == "ok"
    for source in (
        "../../escape.jpg",
        "/etc/absolute.jpg",
        "link.jpg",
        "inner.zip",
        "empty.jpg",
        "truncated.jpg",
        "huge.png",
        "text.jpg",
    ):
        assert report[source]["status"] == "rejected", report[source]
        assert report[source]["reason"]
    assert report["a/a.png"]["file"] != report["b/a.png"]["file"]
    assert files_outside_datasets(live.settings.home) == before
    assert not (live.settings.home.parent / "escape.jpg").exists()
    assert alice.get("/healthz").status_code == 200


def test_zip_bomb_and_entry_flood(live: LiveServer, alice: httpx.Client, tmp_path: Path) -> None:
    bomb = write_zero_bomb(tmp_path / "bomb.zip")
    with zipfile.ZipFile(bomb, "a") as archive:
        archive.writestr("ok.png", tiny_png(9))
    response = post_zip(alice, bomb)
    assert response.status_code == 201, response.text
    report = {item["source"]: item for item in response.json()["report"]["items"]}
    assert report["bomb.jpg"]["status"] == "rejected"
    # Cut off by the per-entry cap once 64 MiB were inflated (the default limit), not read to its full 1 GiB.
    assert report["bomb.jpg"]["reason"] == "entry is over the 64 MiB per-entry limit"
    assert report["ok.png"]["status"] == "ok"

    flood = write_many(tmp_path / "flood.zip", 60_000)
    assert_error(post_zip(alice, flood), 413)
    assert alice.get("/healthz").status_code == 200


@pytest.mark.parametrize("payload", [b"not a zip at all", b"PK\x05\x06" + bytes(18)])
def test_corrupt_or_empty_zip(alice: httpx.Client, tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(payload)
    assert_error(post_zip(alice, path), 422)


def test_upload_limits_are_per_route(tmp_path: Path, tiny_dir: Path) -> None:
    import os

    from genfoundry.config import DatasetSettings, Limits, Settings
    from tests.conftest import free_port, make_home, start_server

    settings = Settings(
        home=make_home(tmp_path, tiny_dir),
        port=free_port(),
        limits=Limits(max_body_bytes=1 << 20),
        datasets=DatasetSettings(max_zip_bytes=3 << 20),
    )
    server = start_server(settings)
    try:
        with server.client() as client:
            medium = write_zip(tmp_path / "m.zip", [Entry("a.png", tiny_png(1)), Entry("pad.bin", os.urandom(2 << 20))])
            assert post_zip(client, medium).status_code == 201
            large = write_zip(tmp_path / "l.zip", [Entry("a.png", tiny_png(1)), Entry("pad.bin", os.urandom(4 << 20))])
            assert_error(post_zip(client, large), 413)
            body = {"model": "tiny-sd15", "prompt": "x" * (2 << 20)}
            assert_error(client.post("/v1/images/generations", json=body), 413)
    finally:
        server.stop()
