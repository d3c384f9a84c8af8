"""EZKL's side of bench/zk-vs-ezkl: the same model and inputs through the
ezkl PyPI package (Halo2/KZG), with a test-only SRS generated locally.

usage: ezkl_timing.py MODEL.onnx INPUTS.json WORKDIR
Prints one JSON line: setup_s, prove_s, verify_ms, peak_rss_mb, logrows,
max_abs_error and argmax_agreement (rescaled circuit outputs against
onnxruntime on every input).
"""
import asyncio
import json
import os
import resource
import sys
import time

import ezkl
import numpy as np
import onnxruntime as ort


def done(x):
    return asyncio.run(x) if asyncio.iscoroutine(x) else x


def main():
    model, inputs_path, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    p = lambda n: os.path.join(work, n)
    inputs = json.load(open(inputs_path))["input_data"]
    first = p("input0.json")
    json.dump({"input_data": [inputs[0]]}, open(first, "w"))
    # calibration on the whole test set
    json.dump({"input_data": [sum(inputs, [])]}, open(p("calibration.json"), "w"))

    args = ezkl.PyRunArgs()
    args.input_visibility = "public"
    args.output_visibility = "public"
    args.param_visibility = "fixed"  # weights are circuit constants, as in gradnet
    args.variables = [("N", 1)]  # the batch dimension: one input per proof
    assert done(ezkl.gen_settings(model, p("settings.json"), py_run_args=args))
    done(ezkl.calibrate_settings(first, model, p("settings.json"), "resources"))
    assert done(ezkl.compile_circuit(model, p("model.compiled"), p("settings.json")))
    logrows = json.load(open(p("settings.json")))["run_args"]["logrows"]
    done(ezkl.gen_srs(p("kzg.srs"), logrows))

    t = time.perf_counter()
    assert done(ezkl.setup(p("model.compiled"), p("vk.key"), p("pk.key"), p("kzg.srs")))
    setup_s = time.perf_counter() - t

    done(ezkl.gen_witness(first, p("model.compiled"), p("witness.json")))
    t = time.perf_counter()
    done(ezkl.prove(p("witness.json"), p("model.compiled"), p("pk.key"), p("proof.json"), p("kzg.srs")))
    prove_s = time.perf_counter() - t

    times = []
    for _ in range(10):
        t = time.perf_counter()
        assert done(ezkl.verify(p("proof.json"), p("settings.json"), p("vk.key"), p("kzg.srs")))
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()

    sess = ort.InferenceSession(model)
    meta = sess.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in meta.shape]
    max_err, agree = 0.0, 0
    for i, x in enumerate(inputs):
        path = p(f"in{i}.json")
        json.dump({"input_data": [x]}, open(path, "w"))
        done(ezkl.gen_witness(path, p("model.compiled"), p(f"w{i}.json")))
        w = json.load(open(p(f"w{i}.json")))
        got = np.array(w["pretty_elements"]["rescaled_outputs"][0], dtype=np.float64)
        want = sess.run(None, {meta.name: np.array(x, dtype=np.float32).reshape(shape)})[0].reshape(-1)
        max_err = max(max_err, float(np.abs(got - want).max()))
        agree += int(np.argmax(got) == np.argmax(want))

    print(json.dumps({
        "logrows": logrows,
        "setup_s": setup_s,
        "prove_s": prove_s,
        "verify_ms": times[len(times) // 2],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_abs_error": max_err,
        "argmax_agreement": agree / len(inputs),
    }))


main()
