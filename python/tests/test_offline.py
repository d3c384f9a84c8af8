"""The SDK's rules without a node: encodings and hashes pinned to the values
the Rust implementation pins, receipts and certificates signed here and
tampered with, strict ed25519, request signatures."""

import base64
import copy
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from gradnet import auth, cid, tensors
from gradnet.ed25519 import small_order, verify_strict
from gradnet.errors import VerificationError
from gradnet.payments import Payer, parse_amount
from gradnet.receipts import Receipt, verify


def test_canonical_hash_matches_the_rust_pin():
    # crates/gradnet-types/src/tensor.rs: canonical_hashes_are_pinned
    t = {
        "b": np.array([1.5, -0.0], dtype=np.float32),
        "a": np.array([["x", "yz"]], dtype=object),
        "c": np.array([True, False, True]),
        "d": np.array(-7, dtype=np.int64),
    }
    assert tensors.hash_tensors("t", t) == "b3j5xbxcdcwbzx5s3erlk6g4lflq64qlp42hyzbwznjj3sjvhqfrpa"


def test_content_ids_have_one_spelling():
    c = cid.of(b"hello")
    assert c.startswith("b3") and len(c) == 54
    assert cid.parse(c) and cid.looks_like(c)
    for bad in ["b4" + c[2:], c[:-1], "b3" + c[2:].upper(), c[:-1] + "1"]:
        with pytest.raises(VerificationError):
            cid.parse(bad)
    # the 4 spare bits must be zero: the last character's low bits
    last = "abcdefghijklmnopqrstuvwxyz234567"
    i = last.index(c[-1])
    with pytest.raises(VerificationError):
        cid.parse(c[:-1] + last[i ^ 1])


def _types(t):
    return {n: {"dtype": tensors.dtype_name(a), "shape": list(a.shape)} for n, a in t.items()}


def test_every_output_encoding_reads_back_to_the_same_hash():
    t = {
        "y": np.array([[0.1, -2.5e-8, 3.4028235e38, 1e-45]], dtype=np.float32),
        "k": np.array([1, -9007199254740993, 2**62], dtype=np.int64),
        "s": np.array(["a", "β"], dtype=object),
        "z": np.array([], dtype=np.float32).reshape(0, 2),
    }
    want = tensors.output_hash(t)
    plain = {n: tensors._plain(a) for n, a in t.items()}
    b64 = tensors.to_json(t)
    fixed = {"numbers": [], "strings": [{"name": "s", "values": ["a", "β"]}]}
    for n in ("y", "k", "z"):
        vals = []
        for x in t[n].reshape(-1):
            text = np.format_float_positional(x, unique=True, trim="-") if t[n].dtype.kind == "f" else str(x)
            whole, _, frac = text.partition(".")
            value, decimals = int(whole + frac), len(frac)
            while value and value % 10 == 0:  # as the node folds trailing zeros
                value, decimals = value // 10, decimals - 1
            vals.append({"value": value if -(2**63) <= value < 2**63 else str(value), "decimals": decimals})
        fixed["numbers"].append({"name": n, "values": vals, "shape": list(t[n].shape)})
    for form in (plain, json.loads(json.dumps(b64)), fixed):
        got = tensors.from_json(json.loads(json.dumps(form)), _types(t))
        assert tensors.output_hash(got) == want, form


def test_decimals_round_straight_to_f32():
    # 1.00000005960464477539062500001 is just above the midpoint between
    # 1 and the next f32: rounding through f64 first would give 1.0
    q = {"numbers": [{"name": "x", "values": [{"value": "100000005960464477539062500001", "decimals": 29}]}]}
    (x,) = tensors.from_json(q, {"x": {"dtype": "f32", "shape": [1]}})["x"]
    assert x == np.nextafter(np.float32(1), np.float32(2))
    big = {"numbers": [{"name": "x", "values": [{"value": 4, "decimals": -38}]}]}
    assert np.isinf(tensors.from_json(big, {"x": {"dtype": "f32", "shape": [1]}})["x"][0])


def test_malformed_outputs_are_named():
    types = {"x": {"dtype": "f32", "shape": [2]}}
    for bad, why in [
        ({"x": [[1.0], [2.0, 3.0]]}, "ragged"),
        ({"x": [1.0, "a"]}, "mixed"),
        ({"x": {"dtype": "f32", "shape": [2], "b64": "AAAA"}}, "bytes do not hold"),
        ({"y": [1.0, 2.0]}, "no output_types entry for `y`"),
        ({"x": [1.5, 2.0]}, None),
    ]:
        if why is None:
            tensors.from_json(bad, types)
            continue
        with pytest.raises(VerificationError, match=why):
            tensors.from_json(bad, types)
    with pytest.raises(VerificationError, match="not representable"):
        tensors.from_json({"x": [1.5]}, {"x": {"dtype": "i64", "shape": [1]}})


def _sign(body: dict, key: Ed25519PrivateKey) -> dict:
    r = Receipt.from_json({**body, "signature": "00" * 64})
    return {**r.to_json(), "signature": key.sign(r.signing_bytes()).hex()}


def _body(key: Ed25519PrivateKey, output_hash: str) -> dict:
    return {
        "version": 1,
        "kind": "onnx",
        "request_hash": cid.of(b"req"),
        "model": cid.of(b"model"),
        "output_hash": output_hash,
        "mode": "VANILLA",
        "runtime": {"name": "gradnet-onnx", "version": "0.1.0", "profile": "det-1"},
        "node": key.public_key().public_bytes_raw().hex(),
        "timestamp_ms": 1_700_000_000_000,
    }


def test_receipts_verify_and_tampering_is_caught():
    key = Ed25519PrivateKey.generate()
    outputs = {"y": np.array([[0.25, 0.75]], dtype=np.float32)}
    resp = {
        "model": cid.of(b"model"),
        "outputs": tensors.to_json(outputs),
        "output_types": _types(outputs),
        "receipt": _sign(_body(key, tensors.output_hash(outputs)), key),
    }
    assert verify(resp).checked == "outputs"
    assert verify(resp["receipt"]).checked == "receipt"
    node = resp["receipt"]["node"]
    verify(resp, signer=node.upper())
    with pytest.raises(VerificationError, match="expected"):
        verify(resp, signer="ab" * 32)
    cases = {
        "output hash mismatch": lambda r: r["outputs"].update(y=[[0.25, 0.5]]),
        "signature does not verify": lambda r: r["receipt"].update(timestamp_ms=1),
        "names model": lambda r: r.update(model=cid.of(b"other")),
        "unsupported receipt version": lambda r: r["receipt"].update(version=2),
        "missing field `kind`": lambda r: r["receipt"].pop("kind"),
        "content id": lambda r: r["receipt"].update(model="b3xyz"),
    }
    for why, change in cases.items():
        t = copy.deepcopy(resp)
        change(t)
        with pytest.raises(VerificationError, match=why):
            verify(t)
    # the profile and the charge are signed; a receipt without them still verifies
    no_profile = _body(key, cid.of(b"o"))
    no_profile["runtime"].pop("profile")
    r = _sign(no_profile, key)
    assert "profile" not in json.dumps(r)
    verify(r)
    r["runtime"]["profile"] = "det-1"
    with pytest.raises(VerificationError):
        verify(r)
    charged = _sign({**_body(key, cid.of(b"o")), "charge": {"payer": "0x1", "payee": "0x2", "amount": "5", "total": "9"}}, key)
    verify(charged)
    charged["charge"]["amount"] = "4"
    with pytest.raises(VerificationError):
        verify(charged)


def test_answers_are_checked_against_their_text():
    key = Ed25519PrivateKey.generate()
    body = _body(key, tensors.llm_output_hash("Paris.", "stop"))
    body["kind"] = "llm"
    answer = {"choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}], "gradnet_receipt": _sign(body, key)}
    assert verify(answer).checked == "answer"
    answer["choices"][0]["message"]["content"] = "Lyon."
    with pytest.raises(VerificationError, match="output hash mismatch"):
        verify(answer)


# the order-8 point (and an encoding of the identity), which RFC 8032's
# check accepts with a forged "signature" for any message
_SMALL = [
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def test_small_order_keys_and_r_are_refused():
    for p in _SMALL:
        assert small_order(p)
    key = Ed25519PrivateKey.generate()
    pk = key.public_key().public_bytes_raw()
    assert not small_order(pk)
    sig = key.sign(b"m")
    assert verify_strict(pk, b"m", sig)
    assert not verify_strict(pk, b"n", sig)
    # a small-order key with R = identity and s = 0 verifies under the
    # cofactorless RFC equation for every message; strict refuses it
    ident = _SMALL[1]
    assert not verify_strict(ident, b"anything", ident + b"\0" * 32)
    assert not verify_strict(_SMALL[0], b"anything", _SMALL[0] + b"\0" * 32)


def _cert(keys, outputs, mode="QUORUM", quorum=3):
    ops = [f"0x{i + 1:040x}" for i in range(len(keys))]
    answers = []
    for k, op, out in zip(keys, ops, outputs):
        answers.append({"operator": op, "receipt": _sign(_body(k, out), k)})
    return {"version": 1, "mode": mode, "chain_id": 7, "seed": {"block": 3, "hash": "0x" + "11" * 32},
            "quorum": quorum, "asked": ops, "answers": answers}


def test_quorum_certificates_need_a_majority_of_distinct_asked_nodes():
    keys = [Ed25519PrivateKey.generate() for _ in range(3)]
    a, b = cid.of(b"a"), cid.of(b"b")
    v = verify(_cert(keys, [a, a, b]))
    assert (v.verdict.output_hash, v.verdict.agreeing, v.verdict.dissenting) == (a, [0, 1], [2])
    with pytest.raises(VerificationError, match="no 2 of the 3 answers agree"):
        verify(_cert(keys, [a, b, cid.of(b"c")]))
    c = _cert(keys, [a, a, a])
    c["answers"][1] = copy.deepcopy(c["answers"][0])
    c["answers"][1]["operator"] = c["asked"][1]
    with pytest.raises(VerificationError, match="same node"):
        verify(c)
    c = _cert(keys, [a, a, a])
    c["asked"] = c["asked"][:2]
    with pytest.raises(VerificationError, match="who was not asked"):
        verify(c)
    c = _cert(keys, [a, a, a])
    c["answers"][2]["receipt"]["output_hash"] = b
    with pytest.raises(VerificationError, match="answer 2: receipt signature"):
        verify(c)
    tee = _cert(keys[:1], [a], mode="TEE", quorum=1)
    with pytest.raises(VerificationError, match="TEE certificate holds one answer"):
        verify(tee)
    tee["enclave"] = "0x" + "22" * 32
    assert verify(tee).verdict.output_hash == a


def test_request_signatures_recover_to_the_signer_and_match_the_rust_pin():
    key = "0x" + "07" * 32
    h = auth.sign_request(key, 31337, "post", "/api/v0/models", auth.body_hash(b"{}"), 1_700_000_000, b"\x01" * 32)
    data = auth.typed_data(31337, "POST", "/api/v0/models", auth.body_hash(b"{}"), 1_700_000_000, b"\x01" * 32)
    signer = Account.recover_message(encode_typed_data(full_message=data), signature=h[auth.SIGNATURE_HEADER])
    assert signer == h[auth.ACCOUNT_HEADER] == Account.from_key(key).address
    # the same hash is pinned in crates/gradnet-client/src/auth.rs
    # (`the_signing_hash_is_pinned`): both sides sign the same bytes
    digest = _hash_eip191_message(encode_typed_data(full_message=data))
    assert digest.hex() == "1cf3751369cea92a593ad8214c06c3d2453e2541a0b9523f017bfd90ede7cb2b"


def test_amounts_and_402_answers():
    assert parse_amount("1.5") == 1_500_000_000_000_000_000
    assert parse_amount("42wei") == 42
    for bad in ["", "x", "1.0000000000000000001", "1e3", "-1"]:
        with pytest.raises(ValueError):
            parse_amount(bad)
    payer = Payer("0x" + "05" * 32, budget=1_000)
    required = {"x402Version": 2, "accepts": [{"scheme": "upto", "network": "eip155:7", "payTo": "0x" + "09" * 20,
                                               "extra": {"minCumulative": "60", "charged": "50"}}]}
    header = payer.answer(base64.b64encode(json.dumps(required).encode()).decode())
    p = json.loads(base64.b64decode(header))
    assert p["payload"]["voucher"]["cumulative"] == "1050"
    assert payer.current == header
