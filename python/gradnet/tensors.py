"""Tensors as gradnet hashes and encodes them.

The canonical binary encoding (what request and output hashes cover) and the
JSON forms a node accepts and answers in — plain nested arrays, OpenGradient's
fixed-point ``{"numbers": [...], "strings": [...]}``, and base64
``{"dtype", "shape", "b64"}`` — read back exactly as the node reads them, so
an output hash recomputed here is the node's, bit for bit.
"""

from __future__ import annotations

import base64
import math
import struct
from fractions import Fraction
from typing import Any, Mapping, Union

import blake3
import numpy as np

from . import cid
from .errors import VerificationError

#: dtype name → (canonical code, numpy dtype, little-endian)
DTYPES: dict[str, tuple[int, Any]] = {
    "f32": (1, np.dtype("<f4")),
    "f64": (2, np.dtype("<f8")),
    "i32": (3, np.dtype("<i4")),
    "i64": (4, np.dtype("<i8")),
    "bool": (5, np.dtype("bool")),
    "string": (6, np.dtype(object)),
}

#: OpenGradient's ``uint8 mode`` numbers for ML inference; QUORUM is gradnet's 3.
MODE_CODES = {"VANILLA": 0, "ZKML": 1, "TEE": 2, "QUORUM": 3}

TensorLike = Union[np.ndarray, list, float, int, bool, str]


def dtype_name(a: np.ndarray) -> str:
    """gradnet's name for a numpy array's dtype (``f32``, ``i64``, …)."""
    k = a.dtype
    if k == np.float32:
        return "f32"
    if k == np.float64:
        return "f64"
    if k == np.int32:
        return "i32"
    if k == np.int64:
        return "i64"
    if k == np.bool_:
        return "bool"
    if k.kind in ("U", "S", "O"):
        return "string"
    raise ValueError(f"gradnet has no dtype for numpy {k}: use float32/64, int32/64, bool or str")


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def _put(b: bytes) -> bytes:
    return _u64(len(b)) + b


def canonical(tensors: Mapping[str, np.ndarray]) -> bytes:
    """The canonical bytes of named tensors: names in byte order, each with
    its dtype code, shape and little-endian values (strings length-prefixed)."""
    out = [_u64(len(tensors))]
    for name in sorted(tensors, key=lambda n: n.encode()):
        a = tensors[name]
        kind = dtype_name(a)
        code, np_dtype = DTYPES[kind]
        out.append(_put(name.encode()))
        out.append(bytes([code]))
        out.append(_u64(len(a.shape)))
        out.extend(_u64(d) for d in a.shape)
        if kind == "string":
            for s in a.reshape(-1):
                s = s.decode() if isinstance(s, bytes) else str(s)
                out.append(_put(s.encode()))
        else:
            out.append(np.ascontiguousarray(a, dtype=np_dtype).tobytes())
    return b"".join(out)


def hash_tensors(domain: str, tensors: Mapping[str, np.ndarray]) -> str:
    """BLAKE3 of the length-prefixed domain and the canonical tensors, as a content id."""
    h = blake3.blake3(_put(domain.encode()))
    h.update(canonical(tensors))
    return cid.from_digest(h.digest())


def output_hash(outputs: Mapping[str, np.ndarray]) -> str:
    """The output hash a receipt signs for ONNX outputs."""
    return hash_tensors("gradnet/infer-output/v1", outputs)


def request_hash(model: str, mode: str, inputs: Mapping[str, np.ndarray]) -> str:
    """The request hash a receipt signs: the model's content id, the mode and
    the inputs after conversion to the model's dtypes."""
    head = _put(b"gradnet/infer-request/v1") + _put(cid.parse(model)) + bytes([MODE_CODES[mode.upper()]])
    h = blake3.blake3(head)
    h.update(canonical(inputs))
    return cid.from_digest(h.digest())


def llm_output_hash(text: str, finish_reason: str) -> str:
    """The output hash a receipt signs for an LLM answer: its text and finish reason."""
    buf = _put(b"gradnet/llm-output/v1") + _put(finish_reason.encode()) + _put(text.encode())
    return cid.of(buf)


# ---- JSON forms -------------------------------------------------------------


def to_json(tensors: Mapping[str, TensorLike], binary: bool = True) -> dict:
    """Request ``inputs`` for named tensors. Numeric numpy arrays travel as
    base64 little-endian values (exact and compact) unless ``binary`` is
    false; lists, scalars and strings travel as plain nested arrays."""
    out: dict[str, Any] = {}
    for name, t in tensors.items():
        if isinstance(t, np.ndarray) and binary and t.dtype.kind in "fib" and t.ndim > 0:
            kind = dtype_name(t)
            data = np.ascontiguousarray(t, dtype=DTYPES[kind][1]).tobytes()
            out[name] = {"dtype": kind, "shape": list(t.shape), "b64": base64.b64encode(data).decode()}
        elif isinstance(t, np.ndarray):
            out[name] = _plain(t)
        else:
            out[name] = t
    return out


def _plain(a: np.ndarray) -> Any:
    if a.dtype.kind == "f":
        return _nonfinite_names(a.tolist())
    if a.dtype.kind == "S":
        return np.char.decode(a).tolist()
    return a.tolist()


def _nonfinite_names(v: Any) -> Any:
    if isinstance(v, list):
        return [_nonfinite_names(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def from_json(outputs: Any, output_types: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A response's ``outputs`` (in any of its encodings) as numpy arrays of
    the dtypes and shapes ``output_types`` declares — read as the node reads
    JSON, so their output hash is the one it signed."""
    parsed = _parse_inputs(outputs)
    typed: dict[str, np.ndarray] = {}
    for name, (shape, values) in parsed.items():
        info = output_types.get(name) if isinstance(output_types, Mapping) else None
        if info is None:
            raise VerificationError(f"no output_types entry for `{name}`")
        kind = info.get("dtype")
        if kind not in DTYPES:
            raise VerificationError(f"`{name}` dtype: unknown variant `{kind}`")
        arr = _to_array(name, shape, values, kind)
        want = info.get("shape")
        if not isinstance(want, list) or not all(isinstance(d, int) and d >= 0 for d in want):
            raise VerificationError(f"`{name}` shape: not an array of sizes")
        if list(arr.shape) != want:
            if math.prod(want) != arr.size:
                raise VerificationError(f"`{name}`: shape {want} does not hold {arr.size} values")
            arr = arr.reshape(want)
        typed[name] = arr
    return typed


def _malformed(name: str, why: str) -> VerificationError:
    return VerificationError(f"tensor `{name}`: {why}")


def _is_fixed_point(obj: dict) -> bool:
    return bool(obj) and all(
        k in ("numbers", "strings")
        and isinstance(v, list)
        and all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in v)
        for k, v in obj.items()
    )


def _parse_inputs(v: Any) -> dict[str, tuple[list[int], Any]]:
    if not isinstance(v, dict):
        raise VerificationError("outputs must be a JSON object of named tensors")
    if _is_fixed_point(v):
        return _parse_fixed_point(v)
    return {name: _parse_plain(name, t) for name, t in v.items()}


def _parse_plain(name: str, v: Any) -> tuple[list[int], Any]:
    if isinstance(v, dict):
        return _parse_b64(name, v)
    shape: list[int] = []
    cur = v
    while isinstance(cur, list):
        shape.append(len(cur))
        if not cur:
            break
        cur = cur[0]
    leaves: list[Any] = []
    _collect(name, v, shape, 0, leaves)
    return shape, _leaf_values(name, leaves)


def _collect(name: str, v: Any, shape: list[int], depth: int, out: list) -> None:
    if isinstance(v, list):
        if depth >= len(shape):
            raise _malformed(name, f"ragged array: too deep at depth {depth}")
        if len(v) != shape[depth]:
            raise _malformed(name, f"ragged array: length {len(v)} at depth {depth}, expected {shape[depth]}")
        for e in v:
            _collect(name, e, shape, depth + 1, out)
    elif depth < len(shape):
        raise _malformed(name, f"ragged array: a scalar at depth {depth}")
    else:
        out.append(v)


# a number as the node holds it: ("int", i) | ("float", f) | ("fixed", value, decimals)
def _leaf_values(name: str, leaves: list) -> tuple[str, list]:
    first = leaves[0] if leaves else 0
    if isinstance(first, bool):
        if not all(isinstance(x, bool) for x in leaves):
            raise _malformed(name, "mixed value types")
        return ("bools", leaves)
    if isinstance(first, (int, float)):
        nums = []
        for x in leaves:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise _malformed(name, "mixed value types")
            # beyond 64 bits JSON integers read as floats, as serde_json reads them
            if isinstance(x, int) and -(2**63) <= x < 2**64:
                nums.append(("int", x))
            else:
                nums.append(("float", float(x)))
        return ("numbers", nums)
    if isinstance(first, str):
        if not all(isinstance(x, str) for x in leaves):
            raise _malformed(name, "mixed value types")
        return ("strings", leaves)
    raise _malformed(name, "values must be numbers, booleans or strings")


def _parse_b64(name: str, obj: dict) -> tuple[list[int], Any]:
    kind = obj.get("dtype")
    if kind not in DTYPES or kind == "string":
        raise _malformed(name, f"binary tensors need a numeric `dtype`, got {kind!r}")
    shape = obj.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _malformed(name, "`shape` must be an array of non-negative integers")
    text = obj.get("b64")
    if not isinstance(text, str):
        raise _malformed(name, "a binary tensor needs its values in `b64`")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as e:
        raise _malformed(name, f"`b64` is not base64: {e}") from None
    np_dtype = DTYPES[kind][1]
    if len(raw) != math.prod(shape) * np_dtype.itemsize:
        raise _malformed(name, f"{len(raw)} bytes do not hold shape {shape} of {kind}")
    return shape, ("binary", np.frombuffer(raw, dtype=np_dtype).copy(), kind)


def _parse_fixed_point(obj: dict) -> dict[str, tuple[list[int], Any]]:
    out: dict[str, tuple[list[int], Any]] = {}

    def insert(name: str, shape: list[int], values: Any, n: int) -> None:
        if math.prod(shape) != n:
            raise _malformed(name, f"shape {shape} does not hold {n} values")
        if name in out:
            raise _malformed(name, "given more than once")
        out[name] = (shape, values)

    for t in obj.get("numbers") or []:
        name = t["name"]
        vals = t.get("values")
        if not isinstance(vals, list):
            raise _malformed(name, "number tensor needs a `values` array")
        nums = [_fixed_number(name, v) for v in vals]
        shape = _shape(name, t["shape"]) if "shape" in t else [len(nums)]
        insert(name, shape, ("numbers", nums), len(nums))
    for t in obj.get("strings") or []:
        name = t["name"]
        vals = t.get("values")
        if not isinstance(vals, list) or not all(isinstance(s, str) for s in vals):
            raise _malformed(name, "string tensor needs a `values` array of strings")
        shape = _shape(name, t["shape"]) if "shape" in t else [len(vals)]
        insert(name, shape, ("strings", vals), len(vals))
    return out


def _shape(name: str, v: Any) -> list[int]:
    if not isinstance(v, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in v):
        raise _malformed(name, "`shape` must be an array of non-negative integers")
    return v


def _fixed_number(name: str, v: Any) -> tuple:
    bad = _malformed(name, f'expected {{"value": int, "decimals": int}}, got {v}')
    if not isinstance(v, dict):
        raise bad
    value = v.get("value")
    if isinstance(value, str):
        # values beyond 64 bits travel as strings; OpenGradient's are int128
        try:
            value = int(value)
        except ValueError:
            raise bad from None
        if not -(2**127) <= value < 2**127:
            raise bad
    elif isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**64:
        raise bad
    dec = v.get("decimals")
    if isinstance(dec, bool) or not isinstance(dec, int) or abs(dec) > 400:
        raise bad
    return ("fixed", value, dec)


_NON_FINITE = {"NaN": math.nan, "nan": math.nan, "Infinity": math.inf, "inf": math.inf,
               "-Infinity": -math.inf, "-inf": -math.inf}


def _exact(n: tuple) -> Fraction:
    if n[0] == "fixed":
        return Fraction(n[1]) * Fraction(10) ** (-n[2])
    return Fraction(n[1])


def _to_f64(n: tuple) -> float:
    if n[0] == "float":
        return n[1]
    try:
        return float(_exact(n))  # int/int division: correctly rounded
    except OverflowError:
        return math.copysign(math.inf, _exact(n))


_F32_OVERFLOW = Fraction(2**128 - 2**103)  # max f32 + half an ulp rounds to infinity


def _f32_nearest(q: Fraction) -> np.float32:
    """The f32 nearest to ``q`` (ties to even), straight from the exact value."""
    if q == 0:
        return np.float32(0.0)
    if abs(q) >= _F32_OVERFLOW:
        return np.float32(math.copysign(math.inf, q))
    c = np.float32(float(q))
    best, best_d = None, None
    with np.errstate(over="ignore"):
        cands = (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf)))
    for k in cands:
        if not np.isfinite(k):
            continue
        d = abs(Fraction(float(k)) - q)
        if best is None or d < best_d or (d == best_d and int(np.array(k).view(np.uint32)) & 1 == 0):
            best, best_d = k, d
    return best


def _to_f32(n: tuple) -> np.float32:
    if n[0] == "float":
        return np.float32(n[1])
    return _f32_nearest(_exact(n))


def _to_int(n: tuple) -> int | None:
    if n[0] == "int":
        return n[1]
    if n[0] == "float":
        f = n[1]
        if math.isfinite(f) and f == int(f) and abs(f) < 1.7e38:
            return int(f)
        return None
    q = _exact(n)
    return q.numerator if q.denominator == 1 else None


def _to_array(name: str, shape: list[int], values: tuple, kind: str) -> np.ndarray:
    tag = values[0]
    np_dtype = DTYPES[kind][1]
    if tag == "binary":
        if values[2] != kind:
            raise _malformed(name, f"expected {kind} values, got binary {values[2]}")
        data = values[1]
    elif tag == "numbers" and kind == "f32":
        data = np.array([_to_f32(n) for n in values[1]], dtype=np_dtype)
    elif tag == "numbers" and kind == "f64":
        data = np.array([_to_f64(n) for n in values[1]], dtype=np_dtype)
    elif tag == "numbers" and kind in ("i32", "i64", "bool"):
        lo, hi = {"i32": (-(2**31), 2**31), "i64": (-(2**63), 2**63), "bool": (0, 2)}[kind]
        ints = []
        for n in values[1]:
            i = _to_int(n)
            if i is None or not lo <= i < hi:
                raise _malformed(name, f"value {n[1]} is not representable as {kind}")
            ints.append(i)
        data = np.array(ints, dtype=np_dtype)
    elif tag == "bools" and kind == "bool":
        data = np.array(values[1], dtype=np_dtype)
    elif tag == "strings" and kind == "string":
        data = np.array(values[1], dtype=object)
    elif tag == "strings" and kind in ("f32", "f64") and all(s in _NON_FINITE for s in values[1]):
        data = np.array([_NON_FINITE[s] for s in values[1]], dtype=np_dtype)
    elif tag == "numbers" and kind == "string" and not values[1]:
        data = np.array([], dtype=object)
    else:
        raise _malformed(name, f"expected {kind} values, got {tag}")
    if math.prod(shape) != data.size:
        raise _malformed(name, f"shape {shape} does not hold {data.size} values")
    return data.reshape(shape)
