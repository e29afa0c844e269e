"""The OpenAI-compatible HTTP API of ``arrayq serve``, a Starlette application around a
:class:`~arrayq.serving.Serving` (``pip install 'arrayq[serve]'``).

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/completions`` and
``POST /v1/chat/completions`` (non-streaming, or server-sent events with ``"stream": true``).
Each choice also carries ``token_ids``, the generated ids (an extension). Errors are JSON
``{"error": {"message", "type", "param", "code"}}``: 400 for a bad request, 404/405 for an
unknown route or method, 503 (with ``Retry-After``) when the queue is full. A client that
disconnects cancels its request, which frees its place in the batch.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._engine import Request, ServerBusy, Serving, ServingClosed
from ._text import TextCodec, TextStream

#: how often (seconds) a non-streaming request checks whether its client is still there
_DISCONNECT_POLL = 0.25
#: largest request body read (a prompt of token ids at the longest contexts fits)
MAX_BODY_BYTES = 8 * 2**20


class BadRequest(Exception):
    """A request the API refuses: status, message and the offending parameter."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.message, self.param, self.status, self.kind = message, param, status, kind


def _error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error") -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _number(body: dict, key: str, default: float, low: float, high: float) -> float:
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not low <= v <= high:
        raise BadRequest(f"{key} must be a number from {low} to {high}, got {v!r}", key)
    return float(v)


def _integer(body: dict, key: str, default: Any, low: int) -> Any:
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise BadRequest(f"{key} must be an integer >= {low}, got {v!r}", key)
    return v


class API:
    """The routes' state: the serving object, the model's name and its text codec."""

    def __init__(self, serving: Serving, model_name: str, codec: TextCodec | None):
        self.serving, self.model_name, self.codec = serving, model_name, codec
        self.created = int(time.time())

    # -------------------------------------------------------------- parsing

    async def _body(self, request: HTTPRequest) -> dict:
        raw = b""
        async for part in request.stream():
            raw += part
            if len(raw) > MAX_BODY_BYTES:
                raise BadRequest(f"the request body is over {MAX_BODY_BYTES} bytes", status=413)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def _common(self, body: dict, default_max: int) -> dict:
        """The generation options every endpoint takes, checked."""
        for key in ("logprobs", "top_logprobs", "echo", "suffix", "tools", "logit_bias"):
            if body.get(key):  # (None, false, 0 and empty values ask for nothing)
                raise BadRequest(f"{key} is not supported by this server", key)
        if _integer(body, "n", 1, 1) != 1:
            raise BadRequest("n must be 1: one choice per request", "n")
        if body.get("stop") not in (None, [], ""):
            raise BadRequest("stop sequences are not supported; generation ends at the model's end token", "stop")
        limit = self.serving.limits.max_tokens
        key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = _integer(body, key, min(default_max, limit), 1)
        if max_tokens > limit:
            raise BadRequest(f"{key} must be at most {limit} on this server, got {max_tokens}", key)
        flags = {key: body.get(key, False) for key in ("stream", "ignore_eos")}
        for key, v in flags.items():
            if not isinstance(v, bool):
                raise BadRequest(f"{key} must be true or false, got {v!r}", key)
        return dict(
            max_tokens=max_tokens,
            temperature=_number(body, "temperature", 1.0, 0.0, 100.0),
            top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
            top_k=_integer(body, "top_k", 0, 0),
            seed=_integer(body, "seed", None, 0),
            stop_ids=() if flags["ignore_eos"] else None,
            stream=flags["stream"],
            usage=isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage") is True,
        )

    def _prompt(self, body: dict) -> list[int]:
        """/v1/completions' prompt: a string (needs a tokenizer) or a list of token ids,
        or a list holding one of those."""
        p = body.get("prompt")
        if isinstance(p, list) and len(p) == 1 and isinstance(p[0], (str, list)):
            p = p[0]
        if isinstance(p, str):
            if self.codec is None:
                raise BadRequest("this model has no tokenizer.json: pass the prompt as a list of token ids", "prompt")
            return self.codec.encode(p)
        if isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
            return p
        raise BadRequest("prompt must be a non-empty string or a non-empty list of token ids (one prompt)", "prompt")

    def _messages(self, body: dict) -> list[int]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list", "messages")
        out = []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise BadRequest("each message needs a role and content", "messages")
            content = m.get("content")
            if isinstance(content, list):  # content parts: the text ones
                parts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
                texts = [t for t in parts if isinstance(t, str)]
                if len(texts) != len(content):
                    raise BadRequest("only text content parts are supported", "messages")
                content = "".join(texts)
            if not isinstance(content, str):
                raise BadRequest("message content must be a string or a list of text parts", "messages")
            out.append({"role": m["role"], "content": content})
        if self.codec is None:
            raise BadRequest(
                "this model has no tokenizer.json, so no chat template: use /v1/completions with token ids", "messages"
            )
        try:
            return self.codec.chat(out)
        except ValueError as exc:
            raise BadRequest(str(exc), "messages") from None

    # -------------------------------------------------------------- routes

    async def health(self, request: HTTPRequest) -> Response:
        serving = self.serving
        chosen = {"activations": serving.activations, "prefill_together": serving.prefill_together}
        return JSONResponse({"status": "ok", **serving.counts(), **chosen, "decode": serving.stats()})

    async def models(self, request: HTTPRequest) -> Response:
        card = {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "arrayq"}
        return JSONResponse({"object": "list", "data": [card]})

    async def completions(self, request: HTTPRequest) -> Response:
        return await self._generate(request, chat=False)

    async def chat_completions(self, request: HTTPRequest) -> Response:
        return await self._generate(request, chat=True)

    async def _generate(self, request: HTTPRequest, chat: bool) -> Response:
        try:
            body = await self._body(request)
            options = self._common(body, self.serving.limits.max_tokens if chat else 16)
            prompt = self._messages(body) if chat else self._prompt(body)
        except BadRequest as exc:
            return _error(exc.status, exc.message, exc.param)
        loop = asyncio.get_running_loop()
        stream, usage = options.pop("stream"), options.pop("usage")
        queue: asyncio.Queue[int | None] = asyncio.Queue()  # streaming: each token, then None
        finished = asyncio.Event()  # otherwise: set at the end

        def listener(req: Request, token: int | None) -> None:
            if stream:
                loop.call_soon_threadsafe(queue.put_nowait, token)
            elif token is None:
                loop.call_soon_threadsafe(finished.set)

        try:
            req = self.serving.submit(prompt, options.pop("max_tokens"), listener=listener, **options)
        except ServerBusy as exc:
            return _error(503, str(exc), kind="server_busy")
        except ServingClosed as exc:
            return _error(503, str(exc), kind="server_closed")
        except ValueError as exc:
            return _error(400, str(exc))
        meta = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": self.model_name,
        }
        if stream:
            return StreamingResponse(
                self._events(req, queue, meta, chat, usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return await self._whole(request, req, finished, meta, chat)

    def _usage(self, req: Request) -> dict:
        n, m = len(req.prompt), len(req.tokens)
        return {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}

    def _choice(self, chat: bool, text: str, ids: list[int], finish: str | None, delta: bool) -> dict:
        choice: dict[str, Any] = {"index": 0}
        if chat:
            choice["delta" if delta else "message"] = (
                {"role": "assistant", "content": text} if not delta else ({"content": text} if text else {})
            )
        else:
            choice["text"] = text
        choice.update(token_ids=ids, finish_reason=finish)
        if not chat:
            choice["logprobs"] = None
        return choice

    async def _whole(
        self, http: HTTPRequest, req: Request, finished: asyncio.Event, meta: dict, chat: bool
    ) -> Response:
        """Wait for the request to finish (cancelling it if the client leaves), then answer."""
        try:
            while True:
                try:
                    await asyncio.wait_for(finished.wait(), _DISCONNECT_POLL)
                    break
                except asyncio.TimeoutError:
                    if await http.is_disconnected():
                        req.cancel()
                        return Response(status_code=499)
        finally:
            req.cancel()  # (no effect once finished; frees the place if this handler is cancelled)
        if req.finish_reason == "error":
            return _error(500, f"generation failed: {req.error}", kind="server_error")
        stream = TextStream(self.codec)
        text = "".join(stream.add(t) for t in req.tokens) + stream.rest()
        choice = self._choice(chat, text, list(req.tokens), _finish(req), delta=False)
        kind = "chat.completion" if chat else "text_completion"
        return JSONResponse({**meta, "object": kind, "choices": [choice], "usage": self._usage(req)})

    async def _events(
        self, req: Request, queue: asyncio.Queue, meta: dict, chat: bool, usage: bool
    ) -> AsyncIterator[str]:
        """The server-sent events of a streaming request: one chunk per token, a last one
        with the finish reason, then ``[DONE]``. Leaving early (the client went) cancels it."""
        kind = "chat.completion.chunk" if chat else "text_completion"
        stream = TextStream(self.codec)

        def event(choice: dict, **extra: Any) -> str:
            return f"data: {json.dumps({**meta, 'object': kind, 'choices': [choice], **extra})}\n\n"

        try:
            if chat:
                yield event({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
            while (token := await queue.get()) is not None:
                yield event(self._choice(chat, stream.add(token), [token], None, delta=True))
            if req.finish_reason == "error":
                message = {"message": f"generation failed: {req.error}", "type": "server_error"}
                yield f"data: {json.dumps({'error': message})}\n\n"
                return
            yield event(self._choice(chat, stream.rest(), [], _finish(req), delta=True))
            if usage:
                yield f"data: {json.dumps({**meta, 'object': kind, 'choices': [], 'usage': self._usage(req)})}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            req.cancel()


def _finish(req: Request) -> str:
    """OpenAI's finish_reason: "stop" or "length" (a cancelled request reports "stop")."""
    return "length" if req.finish_reason == "length" else "stop"


async def _http_error(request: HTTPRequest, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal server error"
    return _error(status, f"{detail}: {request.method} {request.url.path}")


def create_app(serving: Serving, model_name: str, codec: TextCodec | None = None) -> Starlette:
    """The Starlette application serving ``serving`` as ``model_name`` (its id in
    /v1/models), with ``codec`` for text prompts and chat (None: token ids only)."""
    api = API(serving, model_name, codec)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


__all__ = ["API", "MAX_BODY_BYTES", "create_app"]
