"""The server's dataset endpoints over HTTP, for `genfoundry datasets ...` when a server answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genfoundry.client_jobs import JobsClient


class DatasetsClient(JobsClient):
    """Datasets on a running server (with the job calls, to follow downloads and captioning)."""

    def create_from_zip(self, *, name: str, zip_path: Path, trigger_word: str | None) -> dict[str, Any]:
        """POST /v1/datasets: the dataset with its `report` (what happened to each file)."""
        form = {"name": name, **({"trigger_word": trigger_word} if trigger_word else {})}
        with zip_path.open("rb") as handle:
            response = self._request("POST", "/v1/datasets", data=form, files={"file": (zip_path.name, handle)})
        result: dict[str, Any] = response.json()
        return result

    def create_from_urls(self, *, name: str, urls: list[str], trigger_word: str | None) -> dict[str, Any]:
        """POST /v1/datasets/from-urls: the dataset, whose `job_id` downloads the images."""
        body = {"name": name, "urls": urls, "trigger_word": trigger_word}
        result: dict[str, Any] = self._request("POST", "/v1/datasets/from-urls", json=body).json()
        return result

    def create_from_jsonl(self, *, name: str, path: Path) -> dict[str, Any]:
        """POST /v1/files (purpose fine-tune), the file named `name` (the name it gets); returns the dataset."""
        with path.open("rb") as handle:
            response = self._request("POST", "/v1/files", data={"purpose": "fine-tune"}, files={"file": (name, handle)})
        return self.dataset(response.json()["id"])

    def caption(self, dataset_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/datasets/{id}/caption: the captioning job."""
        result: dict[str, Any] = self._request("POST", f"/v1/datasets/{dataset_id}/caption", json=body).json()
        return result

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset of the caller, newest first (all pages)."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self._request("GET", "/v1/datasets", params=params).json()
            rows.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return rows
            params["after"] = page["data"][-1]["id"]

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/datasets/{dataset_id}").json()
        return result

    def kohya_config(self, dataset_id: str, params: dict[str, Any]) -> str:
        """GET /v1/datasets/{id}/config?format=kohya: the TOML text."""
        return self._request("GET", f"/v1/datasets/{dataset_id}/config", params={"format": "kohya", **params}).text

    def wait(self, job_id: str) -> dict[str, Any]:
        """Follow the job's event stream until it has ended; returns the job."""
        for _event in self.stream_events(job_id):
            pass
        return self.job(job_id)
