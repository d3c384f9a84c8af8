"""Offline verification of a node's answers, by the rules of
``gradnet receipt verify``: a receipt's signature (ed25519, strict) over
``gradnet-receipt-v1\\n`` + the compact JSON of its body, that the outputs
(or the LLM's text) in a response are the ones it signs, and a gateway's
certificate (QUORUM: every signature, one request, a majority; TEE: one
enclave's answer)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from . import cid
from .ed25519 import verify_strict
from .errors import VerificationError
from .tensors import from_json, llm_output_hash, output_hash

RECEIPT_VERSION = 1
CERTIFICATE_VERSION = 1
MAX_QUORUM = 15
DETERMINISTIC_PROFILE = "det-1"
_DOMAIN = b"gradnet-receipt-v1\n"
_MODES = ("VANILLA", "QUORUM", "ZKML", "TEE")


def _bad(why: str) -> VerificationError:
    return VerificationError(why)


def _field(obj: dict, name: str, kind: type, what: str = "receipt") -> Any:
    if name not in obj:
        raise _bad(f"not a gradnet {what}: missing field `{name}`")
    v = obj[name]
    if kind is int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _bad(f"not a gradnet {what}: `{name}` must be a non-negative integer")
    elif not isinstance(v, kind):
        raise _bad(f"not a gradnet {what}: `{name}` must be a {kind.__name__}")
    return v


def _mode(v: Any) -> str:
    if not isinstance(v, str) or v.upper() not in _MODES:
        raise _bad(f"unknown inference mode `{v}`; expected one of VANILLA, QUORUM, ZKML, TEE")
    return v.upper()


@dataclass(frozen=True)
class Receipt:
    """A node's signed statement of which model it ran on which input and
    what came out (``receipt`` in ``/v1/infer`` answers, ``gradnet_receipt``
    in OpenAI-shaped ones)."""

    version: int
    kind: str
    request_hash: str
    model: str
    output_hash: str
    mode: str
    runtime: dict
    node: str
    timestamp_ms: int
    signature: str
    charge: Optional[dict] = None

    @classmethod
    def from_json(cls, v: Any) -> "Receipt":
        if not isinstance(v, dict):
            raise _bad("not a gradnet receipt: expected a JSON object")
        for c in ("request_hash", "model", "output_hash"):
            cid.parse(_field(v, c, str))
        rt = _field(v, "runtime", dict)
        runtime = {"name": _field(rt, "name", str, "runtime"), "version": _field(rt, "version", str, "runtime")}
        profile = rt.get("profile", "")
        if not isinstance(profile, str):
            raise _bad("not a gradnet receipt: `runtime.profile` must be a string")
        if profile:
            runtime["profile"] = profile
        charge = v.get("charge")
        if charge is not None:
            if not isinstance(charge, dict):
                raise _bad("not a gradnet receipt: `charge` must be an object")
            charge = {k: _field(charge, k, str, "charge") for k in ("payer", "payee", "amount", "total")}
        version = _field(v, "version", int)
        timestamp = _field(v, "timestamp_ms", int)
        if version >= 2**32 or timestamp >= 2**64:
            raise _bad("not a gradnet receipt: a number out of range")
        return cls(
            version=version,
            kind=_field(v, "kind", str),
            request_hash=v["request_hash"],
            model=v["model"],
            output_hash=v["output_hash"],
            mode=_mode(_field(v, "mode", str)),
            runtime=runtime,
            node=_field(v, "node", str),
            timestamp_ms=timestamp,
            signature=_field(v, "signature", str),
            charge=charge,
        )

    @property
    def profile(self) -> str:
        return self.runtime.get("profile", "")

    def body(self) -> dict:
        """The signed fields, in the order they are signed."""
        b = {
            "version": self.version,
            "kind": self.kind,
            "request_hash": self.request_hash,
            "model": self.model,
            "output_hash": self.output_hash,
            "mode": self.mode,
            "runtime": self.runtime,
            "node": self.node,
            "timestamp_ms": self.timestamp_ms,
        }
        if self.charge is not None:
            b["charge"] = self.charge
        return b

    def signing_bytes(self) -> bytes:
        """``gradnet-receipt-v1\\n`` + the compact JSON of the body."""
        try:
            return _DOMAIN + json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError as e:
            raise _bad(f"not a gradnet receipt: {e}") from None

    def to_json(self) -> dict:
        return {**self.body(), "signature": self.signature}

    def verify(self, node: Optional[str] = None) -> "Receipt":
        """Checks the version and the signature (and, with ``node``, that this
        node signed it); returns the receipt, raises :class:`VerificationError`."""
        if node is not None and self.node.lower() != node.lower():
            raise _bad(f"receipt was signed by {self.node}, expected {node}")
        if self.version != RECEIPT_VERSION:
            raise _bad(f"unsupported receipt version {self.version} (this build knows version {RECEIPT_VERSION})")
        pk = _fixed_hex(self.node, 32, "receipt signature: invalid public key")
        sig = _fixed_hex(self.signature, 64, "receipt signature: malformed signature")
        if not verify_strict(pk, self.signing_bytes(), sig):
            raise _bad("receipt signature: signature does not verify")
        return self

    def check_output(self, actual: str) -> None:
        if actual != self.output_hash:
            raise _bad(f"output hash mismatch: receipt says {self.output_hash}, outputs hash to {actual}")


def _fixed_hex(s: str, n: int, why: str) -> bytes:
    """``n`` bytes spelled in hex, or ``why`` as the error."""
    try:
        b = bytes.fromhex(s)
    except ValueError:
        b = b""
    if len(b) != n:
        raise _bad(why)
    return b


def answer_hash(resp: dict) -> str:
    """The output hash of a chat or completion answer (text and finish reason)."""
    choices = resp.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text = next(
        (t for t in (resp.get("gradnet_output"), msg.get("content"), choice.get("text")) if isinstance(t, str)),
        None,
    )
    if text is None:
        raise _bad("the answer has no choices[0].message.content or choices[0].text")
    reason = choice.get("finish_reason")
    if not isinstance(reason, str):
        raise _bad("the answer has no finish_reason")
    return llm_output_hash(text, reason)


def output_hash_of(resp: dict) -> str:
    """The output hash of an inference response, as the node computed it."""
    if "outputs" not in resp:
        raise _bad("response `outputs`: missing")
    types = resp.get("output_types")
    if not isinstance(types, dict):
        raise _bad("the response has no `output_types`")
    try:
        return output_hash(from_json(resp["outputs"], types))
    except VerificationError as e:
        raise _bad(f"response `outputs`: {e}") from None


@dataclass
class Verdict:
    """What a certificate shows: the agreed output hash, who agreed, who dissented."""

    output_hash: str
    agreeing: list[int]
    dissenting: list[int]


@dataclass
class Certificate:
    """A gateway's certificate: the signed answers of the nodes it asked."""

    raw: dict
    mode: str
    chain_id: int
    quorum: int
    asked: list[str]
    answers: list[tuple[str, Receipt]]
    enclave: Optional[str] = None
    zk: Optional[dict] = None

    @classmethod
    def from_json(cls, v: Any) -> "Certificate":
        what = "certificate"
        if not isinstance(v, dict):
            raise _bad("not a gradnet certificate: expected a JSON object")
        version = _field(v, "version", int, what)
        if version != CERTIFICATE_VERSION:
            raise _bad(f"certificate: unsupported certificate version {version} (this build knows version {CERTIFICATE_VERSION})")
        seed = _field(v, "seed", dict, what)
        _field(seed, "block", int, what)
        _address(_field(seed, "hash", str, what), 32)
        asked = [_address(a) for a in _field(v, "asked", list, what)]
        answers = []
        for a in _field(v, "answers", list, what):
            if not isinstance(a, dict):
                raise _bad("not a gradnet certificate: an answer must be an object")
            answers.append((_address(_field(a, "operator", str, what)), Receipt.from_json(_field(a, "receipt", dict, what))))
        return cls(
            raw=v,
            mode=_mode(_field(v, "mode", str, what)),
            chain_id=_field(v, "chain_id", int, what),
            quorum=_field(v, "quorum", int, what),
            asked=asked,
            answers=answers,
            enclave=_address(v["enclave"], 32) if v.get("enclave") is not None else None,
            zk=v.get("zk"),
        )

    def check(self) -> Verdict:
        """Every signature, one request, and the majority (QUORUM) or the one
        enclave answer (TEE) or proved answer (ZKML)."""
        if not 1 <= self.quorum <= MAX_QUORUM:
            raise _bad(f"certificate: quorum {self.quorum} is outside 1..={MAX_QUORUM}")
        if not self.answers:
            raise _bad("certificate: the certificate holds no answer")
        if len(self.asked) > 2 * self.quorum:
            raise _bad(f"certificate: {len(self.asked)} nodes asked; a quorum of {self.quorum} asks at most {2 * self.quorum}")
        for i, a in enumerate(self.asked):
            if a in self.asked[:i]:
                raise _bad(f"certificate: operator {a} is listed twice among the nodes asked")
        first = self.answers[0][1]
        for i, (op, r) in enumerate(self.answers):
            if op not in self.asked:
                raise _bad(f"certificate: answer {i} is from {op}, who was not asked")
            for j, (op2, r2) in enumerate(self.answers[:i]):
                if op2 == op or r2.node.lower() == r.node.lower():
                    raise _bad(f"certificate: answers {j} and {i} come from the same node")
            try:
                r.verify()
            except VerificationError as e:
                raise _bad(f"certificate: answer {i}: {e}") from None
            for attr, what in (("request_hash", "request"), ("model", "model"), ("kind", "kind of run")):
                if getattr(r, attr) != getattr(first, attr):
                    raise _bad(f"certificate: answer {i} is to another {what} than answer 0")
        one = Verdict(first.output_hash, [0], [])
        if self.mode == "QUORUM":
            return self._majority()
        if self.mode == "TEE":
            if len(self.answers) == 1 and self.enclave is not None and self.quorum == 1:
                return one
            raise _bad("certificate: a TEE certificate holds one answer and its enclave's registration")
        if self.mode == "ZKML":
            if len(self.answers) == 1 and self.zk is not None and self.quorum == 1:
                return one
            raise _bad("certificate: a ZKML certificate holds one answer and its proof")
        raise _bad(f"certificate: a certificate is for QUORUM, TEE or ZKML answers, not {self.mode}")

    def _majority(self) -> Verdict:
        for i, (_, r) in enumerate(self.answers):
            if r.profile != DETERMINISTIC_PROFILE:
                raise _bad(f"certificate: answer {i} comes from runtime profile `{r.profile}`: QUORUM compares only `det-1` results")
        hashes = [r.output_hash for _, r in self.answers]
        best, n = None, 0
        for h in hashes:  # the first hash with the most votes
            c = hashes.count(h)
            if c > n:
                best, n = h, c
        need = self.quorum // 2 + 1
        if n < need:
            raise _bad(f"certificate: no {need} of the {len(hashes)} answers agree (quorum {self.quorum})")
        agreeing = [i for i, h in enumerate(hashes) if h == best]
        return Verdict(best, agreeing, [i for i in range(len(hashes)) if hashes[i] != best])


def _address(s: Any, nbytes: int = 20) -> str:
    if not isinstance(s, str) or not s.startswith(("0x", "0X")) or len(s) != 2 + 2 * nbytes:
        raise _bad(f"not a gradnet certificate: `{s}` is not 0x and {2 * nbytes} hex digits")
    try:
        bytes.fromhex(s[2:])
    except ValueError:
        raise _bad(f"not a gradnet certificate: `{s}` is not hex") from None
    return s.lower()


@dataclass
class Verified:
    """What a verified answer proved."""

    #: ``receipt`` (a bare receipt), ``outputs`` (ONNX outputs), ``answer``
    #: (LLM text), ``certificate`` (a bare certificate)
    checked: str
    receipt: Optional[Receipt] = None
    certificate: Optional[Certificate] = None
    verdict: Optional[Verdict] = None
    #: whether the response's answer is the certified one
    answer_certified: bool = False
    notes: list[str] = field(default_factory=list)


def verify_certificate(v: dict) -> Optional[tuple[Certificate, Verdict, bool]]:
    """The certificate in a gateway's response (or a bare certificate),
    checked offline, and whether the response's answer is the certified one."""
    c = v.get("certificate", v.get("gradnet_certificate"))
    if c is not None:
        response: Optional[dict] = v
    elif "answers" in v and "seed" in v:
        c, response = v, None
    else:
        return None
    cert = Certificate.from_json(c)
    verdict = cert.check()
    checked = False
    if response is not None and cert.mode != "ZKML":
        got = answer_hash(response) if "choices" in response else output_hash_of(response)
        if got != verdict.output_hash:
            raise _bad(f"the response's answer hashes to {got}, the certificate's majority signed {verdict.output_hash}")
        checked = True
    return cert, verdict, checked


def verify(v: Any, signer: Optional[str] = None) -> Verified:
    """Verifies an answer as a node or gateway sent it: an inference response
    (``receipt``), an OpenAI-shaped answer (``gradnet_receipt``), a bare
    receipt, or a certificate. Raises :class:`VerificationError` naming the
    check that failed."""
    if not isinstance(v, dict):
        raise _bad("expected a JSON object: a response, a receipt or a certificate")
    if "answers" in v and "seed" in v:
        cert, verdict, _ = verify_certificate(v)  # type: ignore[misc]
        out = Verified("certificate", certificate=cert, verdict=verdict)
        if cert.mode == "ZKML":
            out.notes.append("the ZKML proof itself is checked with `gradnet zk verify`")
        return out
    cert = verify_certificate(v)
    if cert is not None and cert[0].mode == "ZKML":
        # a ZKML answer's receipt signs the proof, not the outputs
        out = Verified("certificate", certificate=cert[0], verdict=cert[1])
        out.notes.append("the ZKML proof itself is checked with `gradnet zk verify`")
        return out
    receipt_json = v.get("receipt", v.get("gradnet_receipt"))
    response = v if receipt_json is not None else None
    receipt = Receipt.from_json(receipt_json if receipt_json is not None else v)
    receipt.verify(signer)
    out = Verified("receipt", receipt=receipt)
    if response is not None:
        if "choices" in response:
            receipt.check_output(answer_hash(response))
            out.checked = "answer"
        else:
            receipt.check_output(output_hash_of(response))
            m = response.get("model")
            if isinstance(m, str) and m != receipt.model:
                raise _bad(f"the response names model {m} but the receipt signs {receipt.model}")
            out.checked = "outputs"
    if cert is not None:
        out.certificate, out.verdict, out.answer_certified = cert
    return out


def verify_file(path: str, signer: Optional[str] = None) -> Verified:
    """:func:`verify` on a JSON file (what ``gradnet infer --save`` writes)."""
    with open(path, encoding="utf-8") as f:
        try:
            v = json.load(f)
        except json.JSONDecodeError as e:
            raise _bad(f"not JSON: {e}") from None
    return verify(v, signer)
