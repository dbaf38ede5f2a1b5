"""Prompt classification and routing (the shipped router or a caller's own classifier, trained by the fine-tuning
method "classifier" and registered per owner)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from genfoundry.config import RouterSettings, Settings
from genfoundry.db.tables import Classifier
from genfoundry.errors import Invalid, TooLarge
from genfoundry.jobs.env import JobEnv
from genfoundry.repo import classifiers as classifiers_repo
from genfoundry.router.encoder import TextEncoder
from genfoundry.router.head import HEAD_META, HEAD_WEIGHTS, ClassifierHead, Prediction, default_head_dir, load_head
from genfoundry.schemas import RouteMessage
from genfoundry.storage import ArtifactStore

logger = logging.getLogger(__name__)

ROUTER_MODEL_ID = "router-default"


@dataclass(frozen=True)
class Classification:
    model: str
    predictions: list[Prediction]


@dataclass(frozen=True)
class RouteDecision:
    model: str
    prediction: Prediction
    message_index: int


def classifier_prefix(classifier_id: str) -> str:
    return f"classifiers/{classifier_id}"


def as_route_message(message: object) -> RouteMessage:
    """A chat message from another schema (or a plain dict) in the router's shape."""
    if isinstance(message, RouteMessage):
        return message
    if isinstance(message, BaseModel):
        message = message.model_dump()
    try:
        return RouteMessage.model_validate(message)
    except ValidationError as exc:
        raise Invalid(f"not a chat message: {exc.errors()[0]['msg']}", param="messages") from None


def last_user_text(messages: Sequence[object]) -> tuple[int, str]:
    """Index and text of the last user message (text parts joined); Invalid when there is none."""
    for index in range(len(messages) - 1, -1, -1):
        message = as_route_message(messages[index])
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            text = message.content
        elif message.content is None:
            text = ""
        else:
            text = "\n".join(part.text for part in message.content if part.text)
        if not text.strip():
            raise Invalid(f"messages[{index}], the last user message, has no text to route", param="messages")
        return index, text
    raise Invalid("messages has no user message to route", param="messages")


def _router_encoder(settings: Settings) -> TextEncoder:
    """The router's sentence encoder as the settings configure it (ONNX Runtime on a CPU by default)."""
    router = settings.router
    device = settings.resolved_device()
    backend = router.encoder_backend
    if backend == "auto":
        backend = "onnx" if device == "cpu" else "torch"
    return TextEncoder(
        device=device,
        threads=router.encoder_threads,
        backend=backend,
        cache_dir=router.encoder_cache_dir or settings.home / "cache" / "encoders",
    )


def shared_router_encoder(env: JobEnv) -> TextEncoder:
    """The process's one router encoder: the server's classifier service and classifier jobs share it."""
    return env.cached("router-encoder", lambda: _router_encoder(env.settings))


class ClassifierService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ArtifactStore,
        settings: RouterSettings,
        encoder: TextEncoder,
        head_dir: Path | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.settings = settings
        self.encoder = encoder
        self.head_dir = head_dir or default_head_dir()
        self._default: ClassifierHead | None = None
        # Encoders with a head's LoRA merged in, one per LoRA file (its path as the head names it) and int8 or not.
        self._tuned: dict[tuple[Path, bool], TextEncoder] = {}
        self._heads: OrderedDict[str, ClassifierHead] = OrderedDict()
        self._lock = threading.Lock()
        self._preload: threading.Thread | None = None

    def preload(self) -> None:
        """Load the shipped router's head and encoder on a background thread (the server calls it at start), so
        the first routed message does not wait for it; a failure is logged and left to the first request."""

        def load() -> None:
            try:
                self.encoder_for(self.default_head()).load()
            except Exception:
                logger.exception("preloading the prompt router failed; it will load on first use")

        self._preload = threading.Thread(target=load, name="router-preload", daemon=True)
        self._preload.start()

    def close(self) -> None:
        """Wait for a preload still running: exiting while it is inside native code (the ONNX export, ONNX Runtime)
        aborts the process ("terminate called without an active exception")."""
        if self._preload is not None:
            self._preload.join()

    # -- heads -------------------------------------------------------------------------------------

    def default_head(self) -> ClassifierHead:
        if self._default is not None:  # loaded once: no lock per request
            return self._default
        with self._lock:
            if self._default is None:
                self._default = load_head(self.head_dir)
            return self._default

    def _custom_head(self, classifier: Classifier) -> ClassifierHead:
        with self._lock:
            head = self._heads.get(classifier.id)
            if head is not None:
                self._heads.move_to_end(classifier.id)
                return head
        prefix = classifier_prefix(classifier.id)
        self.store.local_path(f"{prefix}/{HEAD_WEIGHTS}")
        head = load_head(self.store.local_path(f"{prefix}/{HEAD_META}").parent)
        with self._lock:
            self._heads[classifier.id] = head
            while len(self._heads) > self.settings.max_loaded_heads:
                self._heads.popitem(last=False)
        return head

    def encoder_for(self, head: ClassifierHead) -> TextEncoder:
        """The shared encoder, or for a head trained on a tuned encoder, that encoder (built once, kept); the
        shipped router's in int8 when `router.int8_encoder` is on and the encoder runs on ONNX Runtime."""
        if head.encoder_lora is None:
            return self.encoder
        int8 = self.settings.int8_encoder and self.encoder.backend == "onnx" and head is self._default
        key = (head.encoder_lora.path, int8)
        known = self._tuned.get(key)  # a dict read per request: no lock, no path resolution
        if known is not None:
            return known
        with self._lock:
            if key not in self._tuned:
                self._tuned[key] = TextEncoder(
                    self.encoder.model_dir,
                    lora=head.encoder_lora,
                    device=self.encoder.device,
                    threads=self.encoder.threads,
                    backend=self.encoder.backend,
                    cache_dir=self.encoder.cache_dir,
                    int8=int8,
                )
            return self._tuned[key]

    def head_for(self, owner_id: str, model: str | None) -> tuple[str, ClassifierHead]:
        """The model id and head for `model` (None: the shipped router); another user's classifier is a 404."""
        if model is None or model == ROUTER_MODEL_ID:
            return ROUTER_MODEL_ID, self.default_head()
        with self.sessions() as session:
            classifier = classifiers_repo.require_classifier(session=session, owner_id=owner_id, classifier_id=model)
        return classifier.id, self._custom_head(classifier)

    # -- classify and route ------------------------------------------------------------------------

    def classify(self, owner_id: str, inputs: Sequence[str], model: str | None = None) -> Classification:
        """Label and per-label scores for every text; the list is encoded in one batch."""
        if not inputs:
            raise Invalid("input must list at least one text", param="input")
        cap = self.settings.max_inputs
        if len(inputs) > cap:
            raise TooLarge(f"input lists {len(inputs)} texts; at most {cap} per request", param="input")
        for index, text in enumerate(inputs):
            if not text.strip():
                raise Invalid(f"input[{index}] is empty or only whitespace", param="input")
        model_id, head = self.head_for(owner_id, model)
        # One forward pass for the whole request (at most max_inputs texts).
        embeddings = self.encoder_for(head).encode(list(inputs), batch_size=len(inputs))
        return Classification(model_id, head.predict(embeddings, ambiguity_margin=self.settings.ambiguity_margin))

    def route(self, owner_id: str, messages: Sequence[object], model: str | None = None) -> RouteDecision:
        """Which capability (the router's label) answers the last user message; `messages` are RouteMessage,
        another chat-message model or dicts with `role` and `content` (a string or content parts)."""
        index, text = last_user_text(messages)
        result = self.classify(owner_id, [text], model)
        return RouteDecision(result.model, result.predictions[0], index)

    # -- the registry ------------------------------------------------------------------------------

    def list_models(self, owner_id: str) -> list[Classifier]:
        with self.sessions() as session:
            return classifiers_repo.list_classifiers(session=session, owner_id=owner_id)

    def get(self, owner_id: str, classifier_id: str) -> Classifier | None:
        with self.sessions() as session:
            return classifiers_repo.get_classifier(session=session, owner_id=owner_id, classifier_id=classifier_id)

    def delete(self, *, owner_id: str, classifier_id: str) -> None:
        with self.sessions() as session:
            classifier = classifiers_repo.require_classifier(
                session=session, owner_id=owner_id, classifier_id=classifier_id
            )
            classifiers_repo.delete_classifier(session=session, classifier=classifier)
            session.commit()
        with self._lock:
            self._heads.pop(classifier_id, None)
        self.store.delete(classifier_prefix(classifier_id))
