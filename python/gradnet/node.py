"""A client for one gradnet node (or a gateway): its hub, inference with
receipts checked as they arrive, LLMs, sessions and payment."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import quote

import numpy as np
import requests

from . import auth, cid
from .errors import ApiError, GradnetError, Unreachable, VerificationError
from .hub import Hub
from .payments import PAYMENT_REQUIRED, PAYMENT_SIGNATURE, Payer
from .receipts import Certificate, Receipt, Verdict, verify
from .tensors import TensorLike, from_json, to_json


@dataclass
class InferenceResult:
    """An inference answer: its outputs as numpy arrays, the receipt that
    signs them (checked), and a gateway's certificate when there is one."""

    model: str
    outputs: dict[str, np.ndarray]
    receipt: Optional[Receipt]
    raw: dict
    certificate: Optional[Certificate] = None
    verdict: Optional[Verdict] = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


class Node:
    """A gradnet node at ``url`` (``http://host:7700``; a gateway at
    ``http://validator:7700/gateway``).

    ``key`` (a 0x secp256k1 private key) signs hub writes (EIP-712); a
    ``session`` token from :meth:`sign_in` stands for it. ``payer`` answers
    402s on nodes that charge. ``verify`` checks every answer's receipt (and
    certificate) before returning it."""

    def __init__(
        self,
        url: str,
        key: Optional[str] = None,
        session: Optional[str] = None,
        payer: Optional[Payer] = None,
        timeout: float = 120.0,
        verify: bool = True,
    ):
        self.url = url.rstrip("/")
        self.key = key
        self.session = session
        self.payer = payer
        self.timeout = timeout
        self.verify_answers = verify
        self.http = requests.Session()
        self._chain_id: Optional[int] = None
        self._lock = threading.Lock()
        self.hub = Hub(self)

    def __repr__(self) -> str:
        return f"Node({self.url!r})"

    # ---- transport ----------------------------------------------------------

    def _send(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = self.url + path
        kw.setdefault("timeout", self.timeout)
        try:
            r = self.http.request(method, url, **kw)
        except requests.RequestException as e:
            raise Unreachable(f"{url}: {e}") from None
        if r.status_code >= 400:
            raise api_error(r, url)
        return r

    def _signed_headers(self, method: str, path: str, body_hash: bytes) -> dict[str, str]:
        if self.session:
            return {"Authorization": f"Bearer {self.session}"}
        if self.key:
            return auth.sign_request(self.key, self.chain_id, method, path, body_hash)
        return {}

    def get(self, path: str, **kw: Any) -> Any:
        """GET ``path``, its JSON answer."""
        return self._send("GET", path, **kw).json()

    def write(self, method: str, path: str, body: Any = None) -> Any:
        """A signed JSON write (hub, sessions): its JSON answer."""
        data = b"" if body is None else json.dumps(body).encode()
        headers = self._signed_headers(method, path, auth.body_hash(data))
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._send(method, path, data=data, headers=headers).json()

    def _paid(self, path: str, **kw: Any) -> requests.Response:
        """POST to an inference route, answering a 402 with a voucher once."""
        headers = dict(kw.pop("headers", {}))
        if self.payer is not None and self.payer.current:
            headers[PAYMENT_SIGNATURE] = self.payer.current
        try:
            return self._send("POST", path, headers=headers, **kw)
        except ApiError as e:
            required = e.payment_required
            if e.status != 402 or self.payer is None or not required:
                raise
        headers[PAYMENT_SIGNATURE] = self.payer.answer(required)
        return self._send("POST", path, headers=headers, **kw)

    # ---- node ---------------------------------------------------------------

    def health(self) -> dict:
        """``/health``: liveness, chain id, the node's key, runtimes, prices."""
        return self.get("/health")

    @property
    def chain_id(self) -> int:
        """The chain id the node checks signatures against (from ``/health``)."""
        with self._lock:
            if self._chain_id is None:
                cid_ = self.health().get("chain_id")
                if not isinstance(cid_, int):
                    raise GradnetError(f"{self.url}/health names no chain_id")
                self._chain_id = cid_
            return self._chain_id

    def sign_in(self, ttl_secs: Optional[int] = None) -> "Node":
        """Signs in once with ``key``; the returned client writes with the
        session token instead of signing each request."""
        if not self.key:
            raise GradnetError("signing in needs a key (Node(url, key=…))")
        body = {} if ttl_secs is None else {"ttl_secs": ttl_secs}
        token = self.write("POST", "/api/v0/sessions", body)["token"]
        n = Node(self.url, key=self.key, session=token, payer=self.payer, timeout=self.timeout, verify=self.verify_answers)
        n._chain_id = self._chain_id
        return n

    def sign_out(self) -> None:
        """Revokes this client's session token."""
        self.write("DELETE", "/api/v0/sessions")
        self.session = None

    def whoami(self) -> dict:
        return self._send("GET", "/api/v0/sessions", headers={"Authorization": f"Bearer {self.session}"}).json()

    def metrics(self) -> str:
        """``/metrics`` in Prometheus text format."""
        return self._send("GET", "/metrics").text

    # ---- inference ----------------------------------------------------------

    def signature(self, model: str) -> dict:
        """A model's declared inputs and outputs, and whether this node runs it."""
        return self.get(f"/api/v0/signature/{quote(model, safe='@/')}")

    def resolve(self, model: str, llm: bool = False) -> str:
        """The content id a model reference (``repo@version/file``, ``repo`` for an LLM) names here."""
        q = "?kind=llm" if llm else ""
        return self.get(f"/api/v0/resolve/{quote(model, safe='@/')}{q}")["model"]

    def infer(
        self,
        model: str,
        inputs: Mapping[str, TensorLike],
        mode: str = "VANILLA",
        output_format: str = "base64",
        quorum: Optional[int] = None,
    ) -> InferenceResult:
        """Runs ``model`` (content id or ``repo@version/file``) on named
        inputs (numpy arrays, nested lists or scalars). ``mode``: VANILLA,
        QUORUM, ZKML or TEE (QUORUM and TEE through a gateway come with a
        certificate). The receipt (and certificate) are checked before this
        returns; a forged or mismatched answer raises
        :class:`VerificationError`."""
        body: dict[str, Any] = {"model": model, "inputs": to_json(inputs), "mode": mode.upper()}
        if output_format != "plain":
            body["output_format"] = output_format
        if quorum is not None:
            body["quorum"] = quorum
        raw = self._paid("/v1/infer", json=body).json()
        return self._result(raw)

    def _result(self, raw: dict) -> InferenceResult:
        checked = verify(raw) if self.verify_answers else None
        try:
            outputs = from_json(raw.get("outputs"), raw.get("output_types") or {})
        except VerificationError as e:
            raise VerificationError(f"response `outputs`: {e}") from None
        receipt = checked.receipt if checked else (Receipt.from_json(raw["receipt"]) if "receipt" in raw else None)
        return InferenceResult(
            model=raw.get("model", ""),
            outputs=outputs,
            receipt=receipt,
            raw=raw,
            certificate=checked.certificate if checked else None,
            verdict=checked.verdict if checked else None,
        )

    # ---- LLMs ---------------------------------------------------------------

    def llm(self, **kw: Any) -> "LLM":
        """An OpenAI-compatible client for this node's LLMs, checking receipts."""
        from .llm import LLM

        return LLM(self, **kw)

    def stream_events(self, path: str, body: dict) -> Iterator[dict]:
        """POSTs a streaming request; yields each server-sent event's JSON up to ``[DONE]``."""
        r = self._paid(path, json=body, stream=True)
        done = False
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            ev = json.loads(data)
            if "error" in ev:
                e = ev["error"]
                raise ApiError(200, e.get("code", "error"), e.get("message", ""), self.url + path)
            yield ev
        if not done:
            raise GradnetError("the stream ended before [DONE]")


def api_error(r: requests.Response, url: str) -> ApiError:
    """The error a node answered with: its code and message, or the text."""
    required = r.headers.get(PAYMENT_REQUIRED)
    try:
        e = r.json()["error"]
        return ApiError(r.status_code, str(e.get("code", "error")), str(e.get("message", "")), url, required)
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiError(r.status_code, "http", r.text[:500], url, required)


def default_key() -> Optional[str]:
    """``GRADNET_KEY`` from the environment, as the CLI reads it."""
    return os.environ.get("GRADNET_KEY") or None


__all__ = ["Node", "InferenceResult", "cid"]
