"""Rendered PlantUML diagrams: checked and drawn by the renderer, kept in the artifact store for their URL.

A diagram lives under `diagrams/<id>/` as `diagram.png` or `diagram.svg` plus `meta.json` (owner, format,
size), so its owner's key or a signed URL can fetch it later without a database row.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from genfoundry.diagrams.renderer import PlantUmlRenderer
from genfoundry.diagrams.report import MEDIA_TYPES, DiagramFormat, RenderedDiagram
from genfoundry.errors import NotFound
from genfoundry.repo.ids import new_id
from genfoundry.storage import ArtifactStore

_DIAGRAM_ID = re.compile(r"^dgm_[0-9a-f]{24}$")


def image_key(diagram_id: str, fmt: str) -> str:
    return f"diagrams/{diagram_id}/diagram.{fmt}"


def meta_key(diagram_id: str) -> str:
    return f"diagrams/{diagram_id}/meta.json"


@dataclass(frozen=True)
class StoredDiagram:
    id: str
    owner_id: str
    created: int
    diagram: RenderedDiagram


class DiagramService:
    def __init__(self, *, renderer: PlantUmlRenderer, store: ArtifactStore) -> None:
        self.renderer = renderer
        self.store = store

    def render(self, *, owner_id: str, plantuml: str, fmt: DiagramFormat) -> StoredDiagram:
        """Check and draw `plantuml` (400 refused, 413 too large or slow, 422 invalid), then store the image."""
        diagram = self.renderer.render_diagram(plantuml, fmt)
        diagram_id = new_id("dgm")
        created = int(time.time())
        meta = {
            "owner_id": owner_id,
            "format": fmt,
            "width": diagram.width,
            "height": diagram.height,
            "diagram_type": diagram.diagram_type,
            "created": created,
        }
        self.store.put_bytes(image_key(diagram_id, fmt), diagram.data)
        self.store.put_bytes(meta_key(diagram_id), json.dumps(meta).encode())
        return StoredDiagram(id=diagram_id, owner_id=owner_id, created=created, diagram=diagram)

    def content(self, *, diagram_id: str, owner_id: str | None) -> tuple[bytes, str]:
        """The stored image and its media type; `owner_id` None means access was proven by a signed URL."""
        if not _DIAGRAM_ID.match(diagram_id):
            raise NotFound(f"No diagram with id '{diagram_id}'")
        try:
            meta = json.loads(self.store.get_bytes(meta_key(diagram_id)))
        except NotFound as exc:
            raise NotFound(f"No diagram with id '{diagram_id}'") from exc
        if owner_id is not None and meta.get("owner_id") != owner_id:
            raise NotFound(f"No diagram with id '{diagram_id}'")
        fmt = str(meta["format"])
        return self.store.get_bytes(image_key(diagram_id, fmt)), MEDIA_TYPES[fmt]

    def close(self) -> None:
        self.renderer.close()
