"""`model="auto"` on chat completions: the router picks who answers the last user message — the default image
model (an image URL in the message and in `attachments`), the diagram generator (PlantUML and its drawing), or
the default text model (a normal chat completion)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from genfoundry.presenters.classify import chat_route_public
from genfoundry.presenters.diagrams import diagram_content_path
from genfoundry.presenters.text import chunks_with_route, message_chunks, message_response
from genfoundry.schemas import (
    Attachment,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ImageGenerationRequest,
    RoutePublic,
)
from genfoundry.services.classifiers import ClassifierService, last_user_text
from genfoundry.services.diagram_generation import DiagramGenerator
from genfoundry.services.images import ImageService
from genfoundry.services.text import TextService
from genfoundry.services.urls import UrlSigner

ROUTES = ("image", "diagram", "chat")
FORCED_ROUTE_MODEL = "request"  # the `model` of a route the request chose (`route` on the chat completion)


class AutoChat:
    def __init__(
        self,
        *,
        classifiers: ClassifierService,
        text: TextService,
        images: ImageService,
        diagrams: DiagramGenerator,
        signer: UrlSigner,
        image_model: str,
        text_model: str,
    ) -> None:
        self.classifiers = classifiers
        self.text = text
        self.images = images
        self.diagrams = diagrams
        self.signer = signer
        self.image_model = image_model  # the defaults this machine has (services/default_models.py)
        self.text_model = text_model

    def decide(self, owner_id: str, request: ChatCompletionRequest) -> RoutePublic:
        """The default router's label for the last user message (a label outside image/diagram is chat), or the
        route the request forced."""
        if request.route is not None:
            index, _text = last_user_text(request.messages)
            return RoutePublic(
                model=FORCED_ROUTE_MODEL,
                route=request.route,
                label=request.route,
                scores={request.route: 1.0},
                ambiguous=False,
                margin=1.0,
                message_index=index,
            )
        return chat_route_public(self.classifiers.route(owner_id, request.messages), ROUTES)

    async def answer(self, owner_id: str, request: ChatCompletionRequest, base_url: str) -> ChatCompletionResponse:
        route = await asyncio.to_thread(self.decide, owner_id, request)
        if route.route == "chat":
            response = await self.text.chat(owner_id, self._chat_request(request))
            return response.model_copy(update={"route": route})
        model, message = await self._make(owner_id, request, route, base_url)
        return message_response(model, message, route)

    async def stream(
        self, owner_id: str, request: ChatCompletionRequest, base_url: str
    ) -> AsyncIterator[ChatCompletionChunk]:
        """Chunks as for a named model; an image or a diagram arrives whole in one content chunk."""
        route = await asyncio.to_thread(self.decide, owner_id, request)
        if route.route == "chat":
            chunks = await self.text.open_chat_stream(owner_id, self._chat_request(request))
            return chunks_with_route(chunks, route)
        model, message = await self._make(owner_id, request, route, base_url)
        return message_chunks(model, message, route)

    def _chat_request(self, request: ChatCompletionRequest) -> ChatCompletionRequest:
        return request.model_copy(update={"model": self.text_model, "route": None})

    async def _make(
        self, owner_id: str, request: ChatCompletionRequest, route: RoutePublic, base_url: str
    ) -> tuple[str, ChatCompletionMessage]:
        prompt = request.messages[route.message_index].text()
        if route.route == "image":
            return await self._image(owner_id, request, prompt, base_url)
        return await asyncio.to_thread(self._diagram, owner_id, request, prompt, base_url)

    async def _image(
        self, owner_id: str, request: ChatCompletionRequest, prompt: str, base_url: str
    ) -> tuple[str, ChatCompletionMessage]:
        options = ImageGenerationRequest(model=self.image_model, prompt=prompt, seed=request.seed)
        recorded = await self.images.generate(owner_id=owner_id, options=options)
        row = recorded[0].row
        url = self.signer.image_url(base_url, row.id)
        message = ChatCompletionMessage(
            content=f"Here is your image: {url}", attachments=[Attachment(type="image", id=row.id, url=url)]
        )
        return self.image_model, message

    def _diagram(
        self, owner_id: str, request: ChatCompletionRequest, prompt: str, base_url: str
    ) -> tuple[str, ChatCompletionMessage]:
        made = self.diagrams.generate(owner_id=owner_id, prompt=prompt, seed=request.seed)
        code = f"```plantuml\n{made.final.plantuml}\n```"
        if made.stored is None:
            errors = "; ".join(str(getattr(e, "message", e)) for e in made.final.errors) or "invalid PlantUML"
            content = f"I could not write valid PlantUML in {len(made.attempts)} tries ({errors}). My last try:\n{code}"
            return made.model, ChatCompletionMessage(content=content)
        url = self.signer.path_url(base_url, diagram_content_path(made.stored.id))
        attachment = Attachment(type="diagram", id=made.stored.id, url=url, plantuml=made.final.plantuml)
        content = f"{code}\n\nRendered diagram: {url}"
        return made.model, ChatCompletionMessage(content=content, attachments=[attachment])
