"""Chat completions and completions: resolve the model (a text base or the caller's text adapter), render the
prompt in the format the adapter was trained with, check it against the limits, run it, shape the answer.

`TextService.chat(owner_id, request)` and `open_chat_stream(...)` are the in-process entry points the API
routes use, and other services can call them the same way.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from genfoundry.catalog import Catalog, TextModelEntry
from genfoundry.config import TextSettings
from genfoundry.errors import Invalid, TooLarge, Unprocessable
from genfoundry.inference.model_pool import QueuePlace
from genfoundry.inference.text import (
    SamplingParams,
    TextAdapterSpec,
    TextEngine,
    TextJob,
    TextModelSpec,
    TextOutput,
    TextStream,
)
from genfoundry.presenters.text import ChatChunks, CompletionChunks, chat_completion_response, completion_response
from genfoundry.repo import adapters as adapters_repo
from genfoundry.schemas import (
    SEED_MAX,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    TextSamplingOptions,
)
from genfoundry.services.text_adapters import PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, TEXT_FAMILY, text_adapter_prefix
from genfoundry.services.text_tools import StreamedToolCalls, ToolPlan, plan_tools, template_messages
from genfoundry.storage import ArtifactStore
from genfoundry.text.formats import TEXT_FORMAT_FILE, TextFormat, render_messages

AUTO_MODEL = "auto"
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


@dataclass(frozen=True)
class ResolvedTextModel:
    """What a request's `model` names: a text base, and the caller's adapter on it if it named one."""

    base: TextModelEntry
    adapter: TextAdapterSpec | None
    text_format: TextFormat


@dataclass(frozen=True)
class PlannedText:
    """A checked request: the engine job, plus what the response echoes."""

    job: TextJob
    model: str
    include_usage: bool
    tools: ToolPlan = field(default_factory=ToolPlan)


def _refuse_unsupported(options: TextSamplingOptions, extra: dict[str, Any]) -> None:
    """OpenAI fields we do not serve: a 400 naming the field, unless it carries its neutral value."""
    fields: dict[str, Any] = {
        "frequency_penalty": options.frequency_penalty,
        "presence_penalty": options.presence_penalty,
        "logit_bias": options.logit_bias,
        **extra,
    }
    for name, value in fields.items():
        if value in (None, 0, 0.0, False, {}, [], "none", "auto", {"type": "text"}):
            continue
        raise Invalid(f"{name} is not supported by this server", param=name, code="unsupported_parameter")


class TextService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: ArtifactStore,
        catalog: Catalog,
        engine: TextEngine,
        settings: TextSettings,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.catalog = catalog
        self.engine = engine
        self.settings = settings

    # -- resolving ---------------------------------------------------------------------------------

    def resolve(self, *, owner_id: str, model: str) -> ResolvedTextModel:
        """A text base, or a text adapter of `owner_id`; image models and "auto" (routed before this, on chat
        completions) are a 400, others a 404."""
        if model == AUTO_MODEL:
            raise Invalid('model "auto" routes chat completions only; name a text model or adapter', param="model")
        entry = self.catalog.text_models.get(model)
        if entry is not None:
            return ResolvedTextModel(entry, None, TextFormat(base_id=entry.id, prompt_format=entry.prompt_format))
        if self.catalog.find_visible(model, owner_id) is not None:
            raise Invalid(f"'{model}' is an image model; use /v1/images/generations", param="model")
        with self.sessions() as session:
            adapter = adapters_repo.require_adapter(session=session, owner_id=owner_id, adapter_id=model)
            family, base_id = adapter.family, adapter.base_id
        if family != TEXT_FAMILY:
            raise Invalid(f"'{model}' is an image adapter; use /v1/images/generations", param="model")
        base = self.catalog.text_models.get(base_id)
        if base is None:
            raise Invalid(
                f"adapter '{model}' is for text model '{base_id}', which is not in the catalog", param="model"
            )
        folder = self._adapter_folder(model)
        text_format = TextFormat.read(folder)
        if text_format.base_id != base.id:
            raise Invalid(f"adapter '{model}' was trained for '{text_format.base_id}', not '{base.id}'", param="model")
        return ResolvedTextModel(base, TextAdapterSpec(id=model, path=str(folder)), text_format)

    def _adapter_folder(self, adapter_id: str) -> Path:
        """The adapter's store folder as a local path (fetched into the cache for a remote store)."""
        prefix = text_adapter_prefix(adapter_id)
        paths = [self.store.local_path(f"{prefix}/{name}") for name in (PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE)]
        paths.append(self.store.local_path(f"{prefix}/{TEXT_FORMAT_FILE}"))
        return paths[0].parent

    @staticmethod
    def spec(entry: TextModelEntry) -> TextModelSpec:
        return TextModelSpec(id=entry.id, source=entry.source, dtype=entry.dtype, context_length=entry.context_length)

    # -- planning ----------------------------------------------------------------------------------

    def _check_chars(self, texts: list[str], *, param: str) -> None:
        total = sum(len(text) for text in texts)
        if total > self.settings.max_input_chars:
            raise TooLarge(
                f"{param} hold {total} characters; the limit is {self.settings.max_input_chars} per request",
                param=param,
            )

    def _max_tokens(self, requested: int | None, param: str, default: int) -> int:
        cap = self.settings.max_tokens
        if requested is not None and requested > cap:
            raise Unprocessable(
                f"{param} is too large: {requested}. This server allows at most {cap} completion tokens",
                param=param,
                code="max_tokens_too_large",
            )
        return requested if requested is not None else min(default, cap)

    @staticmethod
    def _fit_context(
        prompts: list[list[int]], max_tokens: int, *, explicit: bool, param: str, limit: int, prompt_param: str
    ) -> int:
        """`max_tokens` if every prompt plus it fits the context; a default is shortened to fit instead."""
        longest = max(len(prompt) for prompt in prompts)
        room = limit - longest
        if room < 1:
            raise Invalid(
                f"the {prompt_param} take {longest} tokens; this model's context length is {limit} tokens",
                param=prompt_param,
                code="context_length_exceeded",
            )
        if max_tokens <= room:
            return max_tokens
        if not explicit:
            return room
        raise Unprocessable(
            f"this model's context length is {limit} tokens; the prompt takes {longest}, so {param} can be at "
            f"most {room}, not {max_tokens}",
            param=param,
            code="context_length_exceeded",
        )

    def _sampling(self, options: TextSamplingOptions, max_tokens: int, extra_stops: tuple[str, ...]) -> SamplingParams:
        n = options.n or 1
        if n > self.settings.max_n:
            raise Invalid(f"n must be between 1 and {self.settings.max_n}", param="n")
        seed = options.seed if options.seed is not None else secrets.randbelow(SEED_MAX + 1)
        stops = options.stop_sequences()
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if options.temperature is None else float(options.temperature),
            top_p=1.0 if options.top_p is None else float(options.top_p),
            stop=stops + tuple(s for s in extra_stops if s not in stops),
            seed=seed,
        )

    def plan_chat(self, *, owner_id: str, request: ChatCompletionRequest) -> PlannedText:
        """Check every field, resolve the model and render the prompt; raises before any work is queued."""
        _refuse_unsupported(
            request,
            {
                "response_format": request.response_format,
                "logprobs": request.logprobs,
                "top_logprobs": request.top_logprobs,
            },
        )
        self._check_chars([message.text() for message in request.messages], param="messages")
        requested: int | None
        if request.max_completion_tokens is not None:
            param, requested = "max_completion_tokens", request.max_completion_tokens
        else:
            param, requested = "max_tokens", request.max_tokens
        max_tokens = self._max_tokens(requested, param, self.settings.default_max_tokens)
        resolved = self.resolve(owner_id=owner_id, model=request.model)
        tokenizer = self.engine.tokenizer(self.spec(resolved.base))
        text_format = resolved.text_format
        tools = plan_tools(request, text_format, tokenizer.chat_template)
        chat_template = text_format.prompt_format == "chat_template"
        messages = template_messages(request, chat_template=chat_template)
        extra_stops: tuple[str, ...] = ()
        if not chat_template:  # a plain-format model's next instruction header means its reply is over
            extra_stops = (text_format.plain_template.split("{prompt}")[0].strip(),)
        render = partial(render_messages, text_format, tools=tools.tools or None)
        prompt = tokenizer.render(render, messages, add_generation_prompt=True) + tools.prefill
        ids = tokenizer.encode_rendered(prompt)  # exactly as SFT tokenized the prompts it trained on
        if not ids:
            raise Invalid("the rendered prompt is empty", param="messages")
        max_tokens = self._fit_context(
            [ids],
            max_tokens,
            explicit=requested is not None,
            param=param,
            limit=tokenizer.context_length,
            prompt_param="messages",
        )
        sampling = self._sampling(request, max_tokens, extra_stops)
        job = TextJob(
            base=self.spec(resolved.base),
            prompts=(tuple(ids),),
            sampling=sampling,
            n=request.n or 1,
            adapter=resolved.adapter,
        )
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return PlannedText(job=job, model=request.model, include_usage=include_usage, tools=tools)

    def plan_completion(self, *, owner_id: str, request: CompletionRequest) -> PlannedText:
        """Like `plan_chat`; each prompt goes to the model verbatim (with the tokenizer's own BOS, if any)."""
        _refuse_unsupported(
            request,
            {"echo": request.echo, "suffix": request.suffix, "logprobs": request.logprobs},
        )
        if request.best_of not in (None, 1, request.n):
            raise Invalid("best_of is not supported by this server", param="best_of", code="unsupported_parameter")
        texts = request.prompts()
        self._check_chars(texts, param="prompt")
        n = request.n or 1
        if len(texts) * n > self.settings.max_n:
            raise Invalid(
                f"{len(texts)} prompts × n={n} is more than {self.settings.max_n} choices per request", param="n"
            )
        max_tokens = self._max_tokens(request.max_tokens, "max_tokens", COMPLETIONS_DEFAULT_MAX_TOKENS)
        resolved = self.resolve(owner_id=owner_id, model=request.model)
        tokenizer = self.engine.tokenizer(self.spec(resolved.base))
        prompts = [tokenizer.encode(text, add_special_tokens=True) for text in texts]
        for index, ids in enumerate(prompts):
            if not ids:
                where = "prompt" if isinstance(request.prompt, str) else f"prompt[{index}]"
                raise Invalid(f"{where} is empty", param="prompt")
        max_tokens = self._fit_context(
            prompts,
            max_tokens,
            explicit=request.max_tokens is not None,
            param="max_tokens",
            limit=tokenizer.context_length,
            prompt_param="prompt",
        )
        job = TextJob(
            base=self.spec(resolved.base),
            prompts=tuple(tuple(ids) for ids in prompts),
            sampling=self._sampling(request, max_tokens, ()),
            n=n,
            adapter=resolved.adapter,
        )
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return PlannedText(job=job, model=request.model, include_usage=include_usage)

    # -- chat --------------------------------------------------------------------------------------

    async def chat(
        self, owner_id: str, request: ChatCompletionRequest, place: QueuePlace | None = None
    ) -> ChatCompletionResponse:
        """A whole chat completion (`request.stream` is not looked at); `place`: the queue place the request held
        before planning (`hold_place`)."""
        planned = await asyncio.to_thread(self.plan_chat, owner_id=owner_id, request=request)
        return self.chat_response(planned, await self.engine.generate(planned.job, place))

    def chat_sync(self, owner_id: str, request: ChatCompletionRequest) -> ChatCompletionResponse:
        """`chat` for callers without an event loop (CLI, scripts)."""
        planned = self.plan_chat(owner_id=owner_id, request=request)
        return self.chat_response(planned, self.engine.generate_sync(planned.job))

    @staticmethod
    def chat_response(planned: PlannedText, output: TextOutput) -> ChatCompletionResponse:
        return chat_completion_response(planned.model, output, tools=planned.tools if planned.tools.tools else None)

    async def open_chat_stream(
        self, owner_id: str, request: ChatCompletionRequest, place: QueuePlace | None = None
    ) -> AsyncIterator[ChatCompletionChunk]:
        """Plan and queue now (so bad input and a full queue raise here), then yield chunks as tokens arrive.

        First a role chunk per choice, then content chunks, then each choice's finish chunk; with
        `stream_options.include_usage` a last chunk with no choices carries the usage. Closing the iterator
        early cancels the generation.
        """
        planned = await asyncio.to_thread(self.plan_chat, owner_id=owner_id, request=request)
        stream = self.engine.stream(planned.job, place)
        return self._chat_chunks(planned, stream)

    async def _chat_chunks(self, planned: PlannedText, stream: TextStream) -> AsyncIterator[ChatCompletionChunk]:
        chunks = ChatChunks(planned.model)
        calls = {index: StreamedToolCalls(planned.tools) for index in range(planned.job.rows) if planned.tools.tools}
        try:
            yield chunks.roles(planned.job.rows)
            async for delta in stream:
                text = calls[delta.index].feed(delta.text) if calls and delta.text else delta.text
                if text:
                    yield chunks.content(delta.index, text)
                if delta.finish_reason is None:
                    continue
                reason = delta.finish_reason
                if calls:
                    rest, answer = calls[delta.index].finish()
                    if rest:
                        yield chunks.content(delta.index, rest)
                    if answer is not None:
                        yield chunks.tool_calls(delta.index, answer.tool_calls)
                        reason = "tool_calls"
                yield chunks.finish(delta.index, reason)
            if planned.include_usage and stream.output is not None:
                yield chunks.usage(stream.output)
        finally:
            stream.cancel()  # a no-op once the job is done; otherwise the client left and the rows stop

    # -- completions -------------------------------------------------------------------------------

    async def complete(
        self, owner_id: str, request: CompletionRequest, place: QueuePlace | None = None
    ) -> CompletionResponse:
        planned = await asyncio.to_thread(self.plan_completion, owner_id=owner_id, request=request)
        return completion_response(planned.model, await self.engine.generate(planned.job, place))

    async def open_completion_stream(
        self, owner_id: str, request: CompletionRequest, place: QueuePlace | None = None
    ) -> AsyncIterator[CompletionResponse]:
        """Like `open_chat_stream`, in the completions shape (text chunks, then a finish chunk per choice)."""
        planned = await asyncio.to_thread(self.plan_completion, owner_id=owner_id, request=request)
        stream = self.engine.stream(planned.job, place)
        return self._completion_chunks(planned, stream)

    async def _completion_chunks(self, planned: PlannedText, stream: TextStream) -> AsyncIterator[CompletionResponse]:
        chunks = CompletionChunks(planned.model)
        try:
            async for delta in stream:
                if delta.text or delta.finish_reason is not None:
                    yield chunks.text(delta.index, delta.text, delta.finish_reason)
            if planned.include_usage and stream.output is not None:
                yield chunks.usage(stream.output)
        finally:
            stream.cancel()
