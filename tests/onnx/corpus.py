#!/usr/bin/env python3
"""Builds the ONNX conformance corpus: models and inputs, with the outputs
onnxruntime gives for them, for gradnet's engine to be compared against.

Usage: corpus.py OUT_DIR [--models DIR] [--only GROUP ...] [--add DIR]
Groups: real (the fetched OCR and VAD models), ml (scikit-learn, XGBoost and
LightGBM models trained here on fixed synthetic data), ops (hand-built ONNX-ML
graphs that exercise every operator option). --add DIR adds every model in
DIR (e.g. gradnet's generated MLP and CNN) with seeded random inputs of its
declared shapes (symbolic dimensions 2).

Each model is OUT_DIR/NAME.onnx beside OUT_DIR/NAME.json:
{"inputs": {name: T}, "expected": {name: T}, "rtol": r, "atol": a} with
T = {"dtype", "shape", "data"}. Tolerances are per family (see TOLERANCES).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# how close gradnet's engine must be to onnxruntime (|d| <= atol + rtol |ref|)
TOLERANCES = {
    "cnn": (1e-3, 1e-4),
    "rnn": (1e-4, 1e-5),
    "ml": (1e-5, 1e-5),
    "exact": (0.0, 0.0),
}


def tensor(a):
    a = np.asarray(a)
    if a.dtype.kind in "US" or a.dtype == object:
        return {"dtype": "string", "shape": list(a.shape), "data": [str(x) for x in a.reshape(-1)]}
    dtype = {"f": {4: "float32", 8: "float64"}, "i": {4: "int32", 8: "int64"}, "b": {1: "bool"}}
    name = dtype.get(a.dtype.kind, {}).get(a.dtype.itemsize)
    if name is None:
        a = a.astype(np.int64) if a.dtype.kind in "iu" else a.astype(np.float32)
        name = "int64" if a.dtype.kind == "i" else "float32"

    def val(x):
        if isinstance(x, float):
            if math.isnan(x):
                return "nan"
            if math.isinf(x):
                return "inf" if x > 0 else "-inf"
        return x

    return {"dtype": name, "shape": list(a.shape), "data": [val(x) for x in a.reshape(-1).tolist()]}


def zipmap_to_array(out):
    """A ZipMap output (list of dicts) as the [N, classes] array gradnet returns."""
    if isinstance(out, list) and out and isinstance(out[0], dict):
        keys = list(out[0].keys())
        return np.array([[row[k] for k in keys] for row in out], dtype=np.float32)
    return out


def write(out_dir, name, model_bytes, inputs, family):
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(None, inputs)
    rtol, atol = TOLERANCES[family]
    spec = {
        "inputs": {k: tensor(v) for k, v in inputs.items()},
        "expected": {n: tensor(zipmap_to_array(r)) for n, r in zip(names, results)},
        "rtol": rtol,
        "atol": atol,
        "family": family,
    }
    with open(os.path.join(out_dir, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(spec, f)


def pattern_image(h, w):
    """The integer pattern the Rust tests build (tests/common `pattern_image`)."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(h), np.arange(w), indexing="ij")
    ink = ((y % 48) >= 14) & ((y % 48) < 34) & ((x % 16) < 9) & (((x * 3 + y * 5) % 11) != 0)
    p = np.where(ink, 20 + (x * y + c * 7) % 40, 235 + (x + y + c) % 20)
    img = (p.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
    return img[None].astype(np.float32)


def real(out_dir, models):
    def load(name):
        with open(os.path.join(models, name), "rb") as f:
            return f.read()

    write(out_dir, "ppocr-det", load("ppocr-v4-det.onnx"), {"x": pattern_image(96, 160)}, "cnn")
    write(out_dir, "ppocr-rec", load("ppocr-v4-rec.onnx"), {"x": pattern_image(48, 160)}, "cnn")
    write(out_dir, "ppocr-cls", load("ppocr-mobile-v2-cls.onnx"), {"x": pattern_image(48, 192)}, "cnn")
    rng = np.random.default_rng(7)
    audio = (0.1 * rng.standard_normal((4, 576))).astype(np.float32)
    zeros = np.zeros((1, 1, 128), np.float32)
    write(out_dir, "silero-16k-sequence", load("silero-vad-16k-sequence.onnx"),
          {"input": audio, "h": zeros, "c": zeros}, "rnn")
    write(out_dir, "silero-openvino-16k", load("silero-vad-openvino-16k.onnx"),
          {"input": audio[:1], "state": np.zeros((2, 1, 128), np.float32)}, "rnn")


def add_models(out_dir, src):
    """Any ONNX model file, with seeded random float inputs."""
    import onnx

    for f in sorted(os.listdir(src)):
        if not f.endswith(".onnx"):
            continue
        path = os.path.join(src, f)
        m = onnx.load(path)
        inits = {i.name for i in m.graph.initializer}
        rng = np.random.default_rng(len(f))
        inputs = {}
        for i in m.graph.input:
            if i.name in inits:
                continue
            t = i.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 2 for d in t.shape.dim]
            if t.elem_type == 1:
                inputs[i.name] = rng.standard_normal(shape).astype(np.float32)
            elif t.elem_type == 7:
                inputs[i.name] = rng.integers(-5, 5, shape).astype(np.int64)
            else:
                sys.exit(f"corpus: {f}: input {i.name} of element type {t.elem_type} is not generated")
        with open(path, "rb") as fh:
            write(out_dir, "gen-" + f[:-5], fh.read(), inputs, "cnn")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--models", default=os.environ.get("GRADNET_MODELS_DIR", os.path.join(ROOT, "models")))
    ap.add_argument("--only", nargs="*", default=["real", "ml", "ops"])
    ap.add_argument("--add", help="also every .onnx model in this directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if args.add:
        add_models(args.out, args.add)
    if "real" in args.only:
        real(args.out, args.models)
    if "ml" in args.only:
        import corpus_ml
        corpus_ml.build(args.out, write)
    if "ops" in args.only:
        import corpus_ops
        corpus_ops.build(args.out, write)


if __name__ == "__main__":
    sys.exit(main())
