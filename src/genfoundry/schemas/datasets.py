"""Datasets, their items and captioning; OpenAI's file object over a dataset."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from genfoundry.schemas.common import ListPublic


class DatasetFromUrls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    urls: list[str] = Field(min_length=1)
    trigger_word: str | None = Field(default=None, max_length=200)


class DatasetPublic(BaseModel):
    id: str
    object: Literal["dataset"] = "dataset"
    name: str
    kind: str
    status: str
    created: int
    trigger_word: str | None
    job_id: str | None
    error: str | None
    stats: dict[str, Any]


class DatasetCreated(DatasetPublic):
    report: dict[str, Any] | None = None


class DatasetItemPublic(BaseModel):
    id: str
    object: Literal["dataset.item"] = "dataset.item"
    source: str
    status: str
    reason: str | None
    sha256: str | None
    width: int | None
    height: int | None
    caption: str | None
    bytes: int
    duplicate_of: str | None


class DatasetItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    caption: str = Field(max_length=4000)


class CaptionsReplace(BaseModel):
    """Replace `find` with `replace` in every caption that contains it (case-sensitive, every occurrence)."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["replace"]
    find: str = Field(min_length=1, max_length=200)
    replace: str = Field(default="", max_length=200)


class CaptionsPrepend(BaseModel):
    """Put `text, ` before every caption that does not start with it already (an uncaptioned image gets `text`)."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["prepend"]
    text: str = Field(min_length=1, max_length=200, description="Usually the trigger word")


CaptionsEdit = Annotated[CaptionsReplace | CaptionsPrepend, Field(discriminator="operation")]


class CaptionsEdited(BaseModel):
    object: Literal["dataset.captions"] = "dataset.captions"
    updated: int = Field(description="How many captions changed")
    data: list[DatasetItemPublic] = Field(description="The items whose caption changed, as they are now")


class CaptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=120)
    prompt: str | None = Field(default=None, max_length=500, description="Florence-2 task token or a prompt")
    task: str | None = Field(default=None, max_length=100, description="alias of prompt, e.g. <DETAILED_CAPTION>")
    trigger_word: str | None = Field(default=None, max_length=200)
    overwrite: bool = False
    batch_size: int | None = Field(default=None, ge=1, le=256)


class FilePublic(BaseModel):
    """OpenAI's file object; `id` is the dataset id, usable as `training_file`."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    # Why processing failed; absent otherwise (OpenAI's schema allows a string, not null).
    status_details: str | None = Field(default=None, exclude_if=lambda value: value is None)


class FileListPublic(ListPublic[FilePublic]):
    """OpenAI's file list: the page's first and last ids (null on an empty page) besides `has_more`."""

    first_id: str | None = None
    last_id: str | None = None
