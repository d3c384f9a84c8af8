"""LLMs on a node, through the official ``openai`` client: every answer's
receipt is checked against its text (and, with a payer, 402s are paid)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional

import openai

from .errors import ApiError
from .payments import PAYMENT_REQUIRED, PAYMENT_SIGNATURE
from .receipts import Receipt, verify

if TYPE_CHECKING:
    from .node import Node


@dataclass
class Answer:
    """An LLM answer: its text (or tool calls), why it stopped, and the
    receipt that signs it (checked)."""

    text: str
    finish_reason: str
    receipt: Optional[Receipt]
    tool_calls: list = field(default_factory=list)
    usage: Optional[dict] = None
    raw: Any = None


class LLM:
    """Chat and completions on ``node``'s LLMs (``model`` is a repository
    name, ``repo@version`` or a content id). ``client`` is the underlying
    :class:`openai.OpenAI`, for anything this wrapper does not cover."""

    def __init__(self, node: "Node", verify: Optional[bool] = None):
        self.node = node
        self.verify_answers = node.verify_answers if verify is None else verify
        self.client = self._client()

    def _client(self) -> openai.OpenAI:
        headers = {}
        if self.node.payer is not None and self.node.payer.current:
            headers[PAYMENT_SIGNATURE] = self.node.payer.current
        return openai.OpenAI(base_url=self.node.url + "/v1", api_key="gradnet", default_headers=headers,
                             max_retries=0, timeout=self.node.timeout)

    def _call(self, fn):
        try:
            return fn(self.client)
        except openai.APIStatusError as e:
            required = e.response.headers.get(PAYMENT_REQUIRED)
            if e.status_code != 402 or self.node.payer is None or not required:
                raise _api_error(e) from None
        self.node.payer.answer(required)
        self.client = self._client()
        try:
            return fn(self.client)
        except openai.APIStatusError as e:
            raise _api_error(e) from None

    def _answer(self, raw: Any) -> Answer:
        d = raw.to_dict()
        receipt = verify(d).receipt if self.verify_answers else (
            Receipt.from_json(d["gradnet_receipt"]) if "gradnet_receipt" in d else None)
        c = d["choices"][0]
        msg = c.get("message") or {}
        return Answer(
            text=msg.get("content") if "message" in c else c.get("text", ""),
            finish_reason=c.get("finish_reason"),
            receipt=receipt,
            tool_calls=msg.get("tool_calls") or [],
            usage=d.get("usage"),
            raw=raw,
        )

    def chat(self, model: str, messages: list[dict], **kw: Any) -> Answer:
        """One chat answer (OpenAI's parameters: ``max_tokens``,
        ``temperature``, ``seed``, ``stop``, ``tools``, ``response_format``, …)."""
        return self._answer(self._call(lambda c: c.chat.completions.create(model=model, messages=messages, **kw)))

    def complete(self, model: str, prompt: str, **kw: Any) -> Answer:
        """One text completion."""
        return self._answer(self._call(lambda c: c.completions.create(model=model, prompt=prompt, **kw)))

    def stream_chat(self, model: str, messages: list[dict], **kw: Any) -> Iterator[str]:
        """Yields the answer's text as it is generated; at the end the whole
        text is checked against the receipt in the last chunk (a mismatch
        raises :class:`~gradnet.errors.VerificationError`). The last answer
        is kept in :attr:`last`."""
        stream = self._call(lambda c: c.chat.completions.create(model=model, messages=messages, stream=True, **kw))
        yield from self._collect(stream, chat=True)

    def stream_complete(self, model: str, prompt: str, **kw: Any) -> Iterator[str]:
        """:meth:`stream_chat` for a text completion."""
        stream = self._call(lambda c: c.completions.create(model=model, prompt=prompt, stream=True, **kw))
        yield from self._collect(stream, chat=False)

    last: Optional[Answer] = None

    def _collect(self, stream: Any, chat: bool) -> Iterator[str]:
        parts: list[str] = []
        reason, receipt_json, raw_output, usage = None, None, None, None
        for chunk in stream:
            d = chunk.to_dict()
            for c in d.get("choices") or []:
                piece = (c.get("delta") or {}).get("content") if chat else c.get("text")
                if piece:
                    parts.append(piece)
                    yield piece
                reason = c.get("finish_reason") or reason
            receipt_json = d.get("gradnet_receipt", receipt_json)
            raw_output = d.get("gradnet_output", raw_output)
            usage = d.get("usage") or usage
        text = "".join(parts)
        whole: dict[str, Any] = {
            "choices": [{"message": {"content": text}, "finish_reason": reason}],
            "gradnet_receipt": receipt_json,
        }
        if raw_output is not None:
            whole["gradnet_output"] = raw_output
        receipt = None
        if self.verify_answers:
            if receipt_json is None:
                from .errors import VerificationError

                raise VerificationError("the stream's last chunk carries no gradnet_receipt")
            receipt = verify(whole).receipt
        self.last = Answer(text=text, finish_reason=reason or "", receipt=receipt, usage=usage, raw=whole)


def _api_error(e: openai.APIStatusError) -> ApiError:
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    code = err.get("code") if isinstance(err, dict) else None
    msg = err.get("message") if isinstance(err, dict) else None
    return ApiError(e.status_code, str(code or "http"), str(msg or e.message), str(e.request.url))
