"""ZIP ingestion against a hostile corpus: a status and reason per entry, nothing written outside out_dir."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from genfoundry.datasets.images import normalize_image
from genfoundry.datasets.zip_ingest import CHUNK_BYTES, NoValidImages, ZipLimits, ZipReport, ingest_zip
from genfoundry.errors import TooLarge, Unprocessable
from tests.datasets import zip_corpus as corpus
from tests.datasets.zip_corpus import Entry

GOOD = corpus.tiny_png(1)


class Sandbox:
    """A tmp folder whose whole tree is compared before and after, so any write outside out_dir shows."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"
        self.before = self.listing()

    def listing(self) -> set[Path]:
        return {path for path in self.root.rglob("*") if self.out not in (path, *path.parents)}

    def zip(self, entries: list[Entry], name: str = "upload.zip") -> Path:
        path = corpus.write_zip(self.root / name, entries)
        self.before.add(path)
        return path

    def ingest(self, zip_path: Path, **kwargs: object) -> ZipReport:
        try:
            return ingest_zip(zip_path, self.out, **kwargs)  # type: ignore[arg-type]
        finally:
            self.assert_contained()

    def assert_contained(self) -> None:
        assert self.listing() == self.before, "a file appeared outside out_dir"
        for path in self.out.rglob("*") if self.out.exists() else []:
            assert path.parent == self.out and path.name.startswith("img_"), path


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox that is also the working directory, so a relative `../` write would land inside it."""
    work = tmp_path / "a" / "b" / "cwd"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    yield Sandbox(tmp_path)


def by_source(report: ZipReport) -> dict[str, tuple[str, str | None]]:
    return {item.source: (item.status, item.reason) for item in report.items}


def test_path_tricks_links_and_special_files_are_rejected_per_entry(box: Sandbox) -> None:
    report = box.ingest(
        box.zip(
            [
                Entry("../../x.jpg", GOOD),
                Entry("/etc/x.jpg", GOOD),
                Entry("C:/x.jpg", GOOD),
                Entry("..\\..\\y.jpg", GOOD),
                Entry("link.jpg", b"/etc/passwd", mode=corpus.symlink_mode()),
                Entry("pipe.jpg", b"", mode=corpus.fifo_mode()),
                Entry("locked.jpg", GOOD, flag_bits=0x1),
                Entry("ok/good.png", GOOD),
            ]
        )
    )
    assert by_source(report) == {
        "../../x.jpg": ("rejected", "parent-directory ('..') component in the path"),
        "/etc/x.jpg": ("rejected", "absolute path"),
        "C:/x.jpg": ("rejected", "drive letter in the path"),
        "..\\..\\y.jpg": ("rejected", "parent-directory ('..') component in the path"),
        "link.jpg": ("rejected", "symbolic link"),
        "pipe.jpg": ("rejected", "special file (device, FIFO or socket)"),
        "locked.jpg": ("rejected", "encrypted entry"),
        "ok/good.png": ("ok", None),
    }
    assert (report.accepted, report.rejected) == (1, 7)
    assert not Path("/etc/x.jpg").exists()
    assert sorted(p.name for p in box.out.iterdir()) == ["img_000001.jpg"]


def test_bad_images_get_a_reason_each(box: Sandbox) -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    report = box.ingest(
        box.zip(
            [
                Entry("empty.jpg", b""),
                Entry("truncated.jpg", corpus.noise_jpeg()[:1500]),
                Entry("huge.png", corpus.png_declaring(100_000, 100_000)),
                Entry("big.png", corpus.png_declaring(5000, 4000)),
                Entry("notes.jpg", b"just some text, renamed\n" * 10),
                Entry("logo.svg", svg),
                Entry("inner.zip", b"whatever"),
                Entry("sneaky.jpg", (box.zip([Entry("a.png", GOOD)], "inner.zip")).read_bytes()),
                Entry("good.png", GOOD),
            ]
        )
    )
    assert by_source(report) == {
        "empty.jpg": ("rejected", "empty file"),
        "truncated.jpg": ("rejected", "truncated or corrupt image"),
        "huge.png": ("rejected", "image is 100000x100000 pixels, over the 16777216-pixel limit"),
        "big.png": ("rejected", "image is 5000x4000 pixels, over the 16777216-pixel limit"),
        "notes.jpg": ("rejected", "not an image"),
        "logo.svg": ("rejected", "unsupported format SVG"),
        "inner.zip": ("rejected", "nested archives are not extracted"),
        "sneaky.jpg": ("rejected", "nested archives are not extracted"),
        "good.png": ("ok", None),
    }


def test_a_corrupt_entry_is_rejected_alone(box: Sandbox) -> None:
    path = box.zip([Entry("noise.jpg", corpus.noise_jpeg(seed=1)), Entry("good.png", GOOD)])
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
        start = info.header_offset + 30 + len(info.filename)  # local header, then the compressed data
    data = bytearray(path.read_bytes())
    data[start + 100 : start + 400] = bytes(300)
    path.write_bytes(bytes(data))
    [bad, good] = box.ingest(path).items
    assert bad.status == "rejected" and bad.reason is not None and bad.reason.startswith("corrupt ZIP entry")
    assert good.status == "ok"


@pytest.fixture(scope="module")
def gigabyte_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = corpus.write_zero_bomb(tmp_path_factory.mktemp("bomb") / "bomb.zip")
    assert path.stat().st_size < 2 * 1024 * 1024  # 1 GiB of zeros deflates to about 1 MB
    return path


@pytest.fixture
def decompressed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every byte zipfile hands out, to prove the caps stop decompression early."""
    counted: list[int] = []
    original = zipfile.ZipExtFile.read

    def counting_read(self: zipfile.ZipExtFile, n: int | None = -1) -> bytes:
        data = original(self, n)
        counted.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    return counted


def test_gigabyte_bomb_stops_at_the_entry_cap(box: Sandbox, gigabyte_bomb: Path, decompressed: list[int]) -> None:
    with pytest.raises(NoValidImages) as caught:
        box.ingest(gigabyte_bomb)
    [item] = caught.value.report.items
    assert (item.source, item.status, item.reason) == (
        "bomb.jpg",
        "rejected",
        "entry is over the 64 MiB per-entry limit",
    )
    assert sum(decompressed) <= ZipLimits().max_entry_bytes + CHUNK_BYTES


def test_gigabyte_bomb_stops_at_the_ratio_cap(box: Sandbox, gigabyte_bomb: Path, decompressed: list[int]) -> None:
    limits = ZipLimits(max_entry_bytes=2 * 1024**3)
    with pytest.raises(NoValidImages) as caught:
        box.ingest(gigabyte_bomb, limits=limits)
    [item] = caught.value.report.items
    assert item.reason is not None and item.reason.startswith("compression ratio over 100:1")
    compressed = zipfile.ZipFile(gigabyte_bomb).infolist()[0].compress_size
    assert sum(decompressed) <= 100 * compressed + CHUNK_BYTES


def test_total_size_cap_rejects_the_rest(box: Sandbox) -> None:
    images = [Entry(f"{i}.png", corpus.tiny_png(i, size=64), compress_type=zipfile.ZIP_STORED) for i in range(1, 6)]
    assert all(140 < len(image.data) < 160 for image in images)
    report = box.ingest(box.zip(images), limits=ZipLimits(max_total_bytes=400))
    assert [item.status for item in report.items] == ["ok", "ok", "rejected", "rejected", "rejected"]
    assert {item.reason for item in report.items[2:]} == {
        "the archive's 400 bytes total uncompressed size limit was reached"
    }


def test_entries_beyond_max_entries_are_rejected_unread(box: Sandbox, decompressed: list[int]) -> None:
    path = corpus.write_many(box.root / "many.zip", 20_000)  # one byte each: "not an image", quickly
    box.before.add(path)
    with pytest.raises(NoValidImages) as caught:
        box.ingest(path)
    reasons = [item.reason for item in caught.value.report.items]
    assert reasons == ["not an image"] * 10_000 + ["over the 10000-entry limit; later entries were not read"] * 10_000
    assert sum(decompressed) == 10_000  # the excess was never decompressed


def test_a_central_directory_over_the_hard_cap_refuses_the_upload(box: Sandbox) -> None:
    path = corpus.write_many(box.root / "many.zip", 20_000)
    box.before.add(path)
    with pytest.raises(TooLarge, match="lists 20000 entries or more; the limit is 15000"):
        box.ingest(path, limits=ZipLimits(max_archive_entries=15_000))


def test_a_lying_entry_count_is_caught_by_walking_the_directory(box: Sandbox) -> None:
    path = corpus.write_many(box.root / "liar.zip", 300)
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # entries on this disk, entries in total
    path.write_bytes(bytes(data))
    box.before.add(path)
    with pytest.raises(TooLarge, match="lists 101 entries or more; the limit is 100"):
        box.ingest(path, limits=ZipLimits(max_archive_entries=100))


def test_conversions_animation_cmyk_and_16_bit(box: Sandbox) -> None:
    report = box.ingest(
        box.zip(
            [
                Entry("anim.gif", corpus.animated_gif()),
                Entry("cmyk.jpg", corpus.cmyk_jpeg()),
                Entry("gray16.png", corpus.png_gray16(0x8000)),
                Entry("rgb16.png", corpus.png_rgb16(value=0x4000)),
                Entry("alpha.png", corpus.png_with_text()),
            ]
        ),
        image_format="PNG",
    )
    assert [item.status for item in report.items] == ["ok"] * 5
    pixels = {}
    for item in report.items:
        assert item.file is not None and item.file.endswith(".png")
        with Image.open(box.out / item.file) as image:
            assert image.mode == "RGB" and not image.info.get("icc_profile")
            assert not getattr(image, "text", {}), "PNG text chunk survived"
            pixels[item.source] = image.getpixel((0, 0))
    assert pixels["anim.gif"] == (0, 255, 0)  # first frame kept
    assert pixels["gray16.png"] == (128, 128, 128)  # scaled from 16 bits, not clipped to 255
    assert pixels["rgb16.png"] == (64, 64, 64)
    assert pixels["alpha.png"] == (255, 127, 127)  # half-transparent red on white
    red, green, blue = pixels["cmyk.jpg"]  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_applied_and_metadata_stripped(box: Sandbox) -> None:
    report = box.ingest(box.zip([Entry("photo.jpg", corpus.rotated_jpeg(16, 8))]))
    [item] = report.items
    assert (item.status, item.width, item.height) == ("ok", 8, 16)
    assert item.file is not None
    with Image.open(box.out / item.file) as image:
        assert image.size == (8, 16)
        assert "exif" not in image.info and not image.getexif()
        assert "icc_profile" not in image.info and "comment" not in image.info
        top, bottom = image.getpixel((4, 3)), image.getpixel((4, 12))
    assert top == pytest.approx((200, 30, 30), abs=8)  # the red left half is now on top, colours kept
    assert bottom == pytest.approx((30, 30, 200), abs=8)


def test_non_utf8_entry_names_are_kept_for_the_report_only(box: Sandbox) -> None:
    report = box.ingest(
        box.zip(
            [
                Entry("café/é.png".encode("latin-1"), corpus.tiny_png(1)),  # latin-1 bytes, no UTF-8 flag
                Entry("日本/写真.png".encode(), corpus.tiny_png(2)),  # UTF-8 bytes, flag not set
                Entry("ünïcode.png", corpus.tiny_png(3)),  # flag set by zipfile
            ]
        )
    )
    assert [(item.source, item.status) for item in report.items] == [
        ("cafΘ/Θ.png", "ok"),  # the cp437 reading zipfile gives: shown, never used as a path
        ("日本/写真.png", "ok"),
        ("ünïcode.png", "ok"),
    ]
    assert sorted(p.name for p in box.out.iterdir()) == ["img_000001.jpg", "img_000002.jpg", "img_000003.jpg"]


def test_same_name_in_two_folders_and_duplicates(box: Sandbox) -> None:
    picture = Image.new("RGB", (8, 8), (10, 20, 30))
    report = box.ingest(
        box.zip(
            [
                Entry("cats/a.jpg", corpus.tiny_png(7)),
                Entry("dogs/a.jpg", corpus.tiny_png(8)),
                Entry("x.png", corpus.encode(picture)),
                Entry("copy/y.png", corpus.encode(picture)),
                Entry("z.bmp", corpus.encode(picture, "BMP")),  # same pixels, another format
            ]
        )
    )
    statuses = [(item.source, item.status, item.file, item.duplicate_of) for item in report.items]
    assert statuses == [
        ("cats/a.jpg", "ok", "img_000001.jpg", None),
        ("dogs/a.jpg", "ok", "img_000002.jpg", None),
        ("x.png", "ok", "img_000003.jpg", None),
        ("copy/y.png", "duplicate", None, "img_000003.jpg"),
        ("z.bmp", "duplicate", None, "img_000003.jpg"),
    ]
    assert report.items[3].reason == "same image as x.png"
    assert report.items[0].sha256 != report.items[1].sha256
    assert (report.accepted, report.duplicates) == (3, 2)


def test_captions_from_txt_and_metadata_jsonl(box: Sandbox) -> None:
    metadata = "\n".join(
        [
            json.dumps({"file_name": "b.png", "text": "a dog"}),
            "{not json",
            json.dumps({"file_name": "../a.png", "text": "escape"}),
            json.dumps({"file_name": "missing.png", "text": "nobody"}),
            json.dumps({"file_name": "c.png"}),
            json.dumps({"file_name": "d.png", "text": "from metadata"}),
        ]
    )
    report = box.ingest(
        box.zip(
            [
                Entry("cats/a.png", corpus.tiny_png(1)),
                Entry("cats/a.txt", "\ufeff  a cat\non a mat \n".encode()),
                Entry("dogs/b.png", corpus.tiny_png(2)),
                Entry("dogs/c.png", corpus.tiny_png(3)),
                Entry("dogs/d.png", corpus.tiny_png(4)),
                Entry("dogs/d.txt", b"from txt"),  # a .txt beats metadata.jsonl
                Entry("dogs/metadata.jsonl", metadata.encode()),
                Entry("long.png", corpus.tiny_png(5)),
                Entry("long.txt", b"word " * 1000),
                Entry("orphan.txt", b"no image"),
            ]
        ),
        limits=ZipLimits(max_caption_chars=100),
    )
    captions = {item.source: item.caption for item in report.items if item.status == "ok"}
    assert captions == {
        "cats/a.png": "a cat on a mat",
        "dogs/b.png": "a dog",
        "dogs/c.png": None,
        "dogs/d.png": "from txt",
        "long.png": ("word " * 20).strip(),
    }
    assert by_source(report)["orphan.txt"] == ("skipped", "caption file with no matching image")
    assert report.warnings == [
        "dogs/metadata.jsonl line 2: not valid JSON",
        "dogs/metadata.jsonl line 3: file_name '../a.png' is not a path inside the archive",
        "dogs/metadata.jsonl line 4: no image entry named 'dogs/missing.png'",
        'dogs/metadata.jsonl line 5: needs a "file_name" string and a "text" string',
        "long.txt: caption cut to 100 characters",
    ]
    first = report.items[0]
    assert first.file == "img_000001.jpg"
    assert (box.out / "img_000001.txt").read_text(encoding="utf-8") == "a cat on a mat"
    assert not (box.out / "img_000003.txt").exists()  # dogs/c.png has no caption


def test_macos_and_hidden_files_are_skipped(box: Sandbox) -> None:
    report = box.ingest(
        box.zip(
            [
                Entry("photos/", b""),
                Entry("photos/a.png", GOOD),
                Entry("__MACOSX/photos/._a.png", b"\x00\x05\x16\x07"),
                Entry("photos/.DS_Store", b"\x00\x00\x00\x01Bud1"),
                Entry(".git/config", b"[core]"),
                Entry("photos/Thumbs.db", b"\xd0\xcf"),
            ]
        )
    )
    assert by_source(report) == {
        "photos/a.png": ("ok", None),
        "__MACOSX/photos/._a.png": ("skipped", "macOS resource data"),
        "photos/.DS_Store": ("skipped", "hidden file"),
        ".git/config": ("skipped", "hidden file"),
        "photos/Thumbs.db": ("skipped", "system file"),
    }
    assert (report.accepted, report.skipped) == (1, 4)


def test_corrupt_truncated_and_empty_archives_are_refused(box: Sandbox) -> None:
    not_zip = box.root / "not.zip"
    not_zip.write_bytes(b"this is not a zip" * 100)
    valid = box.zip([Entry(f"{i}.png", corpus.tiny_png(i)) for i in range(20)], "valid.zip")
    truncated = box.root / "truncated.zip"
    truncated.write_bytes(valid.read_bytes()[:-30])  # cuts into the end-of-central-directory record
    cut_directory = box.root / "cut.zip"
    data = valid.read_bytes()
    directory = data.find(b"PK\x01\x02")
    cut_directory.write_bytes(data[: directory + 10] + data[data.rfind(b"PK\x05\x06") :])
    empty = box.root / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    box.before |= {not_zip, truncated, cut_directory, empty}
    for path, message in [
        (not_zip, "not a ZIP archive"),
        (truncated, "not a ZIP archive"),
        (cut_directory, "truncated or corrupt"),
        (empty, "the ZIP archive is empty"),
    ]:
        with pytest.raises(Unprocessable, match=message):
            box.ingest(path)
    assert not box.out.exists() or not any(box.out.iterdir())


def test_only_bad_files_raises_with_the_report(box: Sandbox) -> None:
    with pytest.raises(NoValidImages) as caught:
        box.ingest(box.zip([Entry("a.jpg", b"text"), Entry("../b.jpg", GOOD), Entry(".hidden.png", GOOD)]))
    error = caught.value
    assert isinstance(error, Unprocessable) and error.status_code == 422 and error.code == "no_valid_images"
    assert error.message == "no valid image in the ZIP archive (2 rejected, 0 duplicate, 1 skipped)"
    body = json.loads(json.dumps(error.report.to_dict()))
    assert (body["accepted"], body["rejected"], body["skipped"]) == (0, 2, 1)
    assert [item["reason"] for item in body["items"]] == [
        "not an image",
        "parent-directory ('..') component in the path",
        "hidden file",
    ]


def test_ten_thousand_tiny_images_with_default_limits(box: Sandbox) -> None:
    path = box.root / "ten_thousand.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for index in range(10_000):
            zf.writestr(f"set/{index:05d}.png", corpus.tiny_png(index))
    box.before.add(path)
    report = box.ingest(path)
    assert report.accepted == 10_000
    assert len(list(box.out.iterdir())) == 10_000


def test_normalize_image_hash_is_of_pixels_not_bytes() -> None:
    picture = Image.new("RGB", (8, 8), (1, 2, 3))
    as_png = normalize_image(corpus.encode(picture), max_pixels=1000)
    as_bmp = normalize_image(corpus.encode(picture, "BMP"), max_pixels=1000, fmt="PNG")
    assert as_png.sha256 == as_bmp.sha256 and as_png.data != as_bmp.data
    assert (as_png.source_format, as_bmp.source_format) == ("PNG", "BMP")
    with pytest.raises(TooLarge, match="8x8 pixels, over the 63-pixel limit"):
        normalize_image(corpus.encode(picture), max_pixels=63)
    with Image.open(io.BytesIO(as_png.data)) as decoded:
        assert decoded.format == "JPEG"
