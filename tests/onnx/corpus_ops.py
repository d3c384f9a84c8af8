"""Hand-built ONNX-ML graphs for the options exported models rarely use:
every tree aggregate function and post-transform, all branch modes and
missing-value tracking, multi-target trees, string labels, the encoders in
both directions, feature plumbing; and a few control-flow and standard
operators (If, Loop, LayerNormalization, GRU, Gelu, Resize linear)."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

ML = helper.make_operatorsetid("ai.onnx.ml", 3)
ONNX = helper.make_operatorsetid("", 18)
F = TensorProto.FLOAT
I64 = TensorProto.INT64
STR = TensorProto.STRING


def model(nodes, inputs, outputs, inits=(), opsets=(ONNX, ML)):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=list(opsets))
    m.ir_version = 8
    return m.SerializeToString()


def vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def rng_x(n=48, f=4, seed=3):
    x = np.random.default_rng(seed).standard_normal((n, f)).astype(np.float32)
    x[5, 1] = np.nan
    x[9, 0] = np.nan
    x[11] = 0.5  # exactly on thresholds
    return x


def forest(n_trees, modes=("BRANCH_LEQ",), n_targets=1, seed=0, leaves_per_target=True):
    """Depth-2 trees over 4 features; thresholds include 0.5 exactly."""
    r = np.random.default_rng(seed)
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                         "target_treeids", "target_nodeids", "target_ids", "target_weights"]}
    for t in range(n_trees):
        mode = modes[t % len(modes)]
        for nid, (feat, val, yes, no, leaf) in enumerate([
            (t % 4, 0.5 if t % 3 == 0 else float(r.normal()), 1, 2, False),
            ((t + 1) % 4, float(r.normal()), 3, 4, False),
            ((t + 2) % 4, float(r.normal()), 5, 6, False),
            (0, 0.0, 0, 0, True), (0, 0.0, 0, 0, True), (0, 0.0, 0, 0, True), (0, 0.0, 0, 0, True),
        ]):
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(nid)
            a["nodes_featureids"].append(feat)
            a["nodes_modes"].append("LEAF" if leaf else mode)
            a["nodes_values"].append(val)
            a["nodes_truenodeids"].append(yes)
            a["nodes_falsenodeids"].append(no)
            a["nodes_missing_value_tracks_true"].append(int((t + nid) % 2 == 0 and not leaf))
            if leaf:
                for target in range(n_targets) if leaves_per_target else [nid % n_targets]:
                    a["target_treeids"].append(t)
                    a["target_nodeids"].append(nid)
                    a["target_ids"].append(target)
                    a["target_weights"].append(float(r.normal()))
    return a


def build(out_dir, write):
    x = rng_x()
    modes = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
    # regressors: every aggregate, one and three targets, post-transforms
    for agg in ["SUM", "AVERAGE", "MIN", "MAX"]:
        for targets, post in [(1, "NONE"), (3, "NONE"), (3, "SOFTMAX"), (3, "LOGISTIC"), (3, "SOFTMAX_ZERO")]:
            a = forest(7, modes, targets, seed=len(agg) + targets)
            base = [0.25 * i for i in range(targets)]
            node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=targets,
                                    aggregate_function=agg, post_transform=post, base_values=base, **a)
            name = f"ops-tree-regressor-{agg.lower()}-{targets}-{post.lower()}"
            write(out_dir, name, model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, targets])]), {"X": x}, "ml")
    a = forest(5, ("BRANCH_LEQ",), 1, seed=9)
    node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
                            post_transform="PROBIT", base_values=[0.5], **a)
    xs = (np.abs(rng_x()) % 1).astype(np.float32) * 0.02
    write(out_dir, "ops-tree-regressor-probit", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 1])]), {"X": xs}, "ml")

    # classifiers: binary (one-class weights, all positive or mixed), multiclass, string labels
    def classifier(name, classes, post, labels, base=None, one_class=False, positive=False, seed=1):
        a = forest(6, ("BRANCH_LEQ", "BRANCH_GT"), classes, seed=seed, leaves_per_target=not one_class)
        c = {k.replace("target_", "class_"): v for k, v in a.items() if k.startswith("target_")}
        if one_class:
            c["class_ids"] = [0 for _ in c["class_ids"]]
        if positive:
            c["class_weights"] = [abs(w) * 0.1 for w in c["class_weights"]]
        n = {k: v for k, v in a.items() if not k.startswith("target_")}
        kw = dict(post_transform=post, **n, **c)
        if base is not None:
            kw["base_values"] = base
        lab = {"classlabels_strings": labels} if isinstance(labels[0], str) else {"classlabels_int64s": labels}
        node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml", **kw, **lab)
        lt = STR if isinstance(labels[0], str) else I64
        onx = model([node], [vi("X", F, [None, 4])], [vi("label", lt, [None]), vi("scores", F, [None, classes])])
        write(out_dir, name, onx, {"X": x}, "ml")

    classifier("ops-tree-classifier-multi-softmax", 3, "SOFTMAX", [10, 20, 30], base=[0.1, 0.2, 0.3])
    classifier("ops-tree-classifier-multi-logistic", 3, "LOGISTIC", ["a", "b", "c"])
    classifier("ops-tree-classifier-multi-softmax-zero", 4, "SOFTMAX_ZERO", [1, 2, 3, 4], seed=4)
    classifier("ops-tree-classifier-binary-mixed-logistic", 2, "LOGISTIC", [0, 1], one_class=True)
    classifier("ops-tree-classifier-binary-mixed-none", 2, "NONE", ["no", "yes"], one_class=True)
    classifier("ops-tree-classifier-binary-positive", 2, "NONE", [3, 7], one_class=True, positive=True)
    classifier("ops-tree-classifier-binary-two-columns", 2, "NONE", [0, 1], base=[0.0, 0.1])

    # linear models
    coef = np.random.default_rng(5).standard_normal(12).astype(np.float32).tolist()
    for post in ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"]:
        node = helper.make_node("LinearRegressor", ["X"], ["Y"], domain="ai.onnx.ml", coefficients=coef,
                                intercepts=[0.1, -0.2, 0.3], targets=3, post_transform=post)
        write(out_dir, f"ops-linear-regressor-{post.lower()}", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 3])]), {"X": x}, "ml")
    for post, labels, n_int in [("NONE", ["x", "y", "z"], 3), ("SOFTMAX", [5, 6, 7], 3), ("LOGISTIC", [0, 1], 1), ("NONE", ["neg", "pos"], 1)]:
        lab = {"classlabels_strings": labels} if isinstance(labels[0], str) else {"classlabels_ints": labels}
        node = helper.make_node("LinearClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
                                coefficients=coef[: 4 * n_int], intercepts=[0.05] * n_int, post_transform=post, **lab)
        lt = STR if isinstance(labels[0], str) else I64
        cols = max(n_int, 2) if len(labels) == 2 else n_int
        name = f"ops-linear-classifier-{post.lower()}-{len(labels)}-{'s' if lt == STR else 'i'}"
        write(out_dir, name, model([node], [vi("X", F, [None, 4])], [vi("label", lt, [None]), vi("scores", F, [None, cols])]), {"X": np.nan_to_num(x)}, "ml")

    # SVMs: linear and sigmoid kernels, liblinear mode
    sv = np.random.default_rng(6).standard_normal((5, 4)).astype(np.float32)
    for kernel, params in [("LINEAR", [0.0, 0.0, 0.0]), ("SIGMOID", [0.1, 0.2, 0.0]), ("POLY", [0.3, 1.0, 4.0])]:
        node = helper.make_node("SVMRegressor", ["X"], ["Y"], domain="ai.onnx.ml", kernel_type=kernel, kernel_params=params,
                                n_supports=5, support_vectors=sv.reshape(-1).tolist(), coefficients=[0.5, -0.2, 0.3, 0.1, -0.4], rho=[0.2])
        write(out_dir, f"ops-svm-regressor-{kernel.lower()}", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 1])]), {"X": np.nan_to_num(x)}, "ml")
    node = helper.make_node("SVMRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_supports=0, coefficients=coef[:4], rho=[0.3], one_class=1,
                            kernel_params=[0.0, 0.0, 0.0])
    write(out_dir, "ops-svm-regressor-one-class-linear", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 1])]), {"X": np.nan_to_num(x)}, "ml")
    node = helper.make_node("SVMClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml", coefficients=coef,
                            rho=[0.1, 0.2, 0.3], classlabels_strings=["a", "b", "c"], post_transform="NONE",
                            kernel_params=[0.0, 0.0, 0.0])
    write(out_dir, "ops-svm-classifier-liblinear", model([node], [vi("X", F, [None, 4])], [vi("label", STR, [None]), vi("scores", F, [None, 3])]), {"X": np.nan_to_num(x)}, "ml")

    # preprocessing and encoders
    xn = np.nan_to_num(x)
    node = helper.make_node("Scaler", ["X"], ["Y"], domain="ai.onnx.ml", offset=[0.1, 0.2, 0.3, 0.4], scale=[2.0, 0.5, 1.5, 3.0])
    write(out_dir, "ops-scaler", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 4])]), {"X": xn}, "ml")
    for norm in ["MAX", "L1", "L2"]:
        node = helper.make_node("Normalizer", ["X"], ["Y"], domain="ai.onnx.ml", norm=norm)
        write(out_dir, f"ops-normalizer-{norm.lower()}", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 4])]), {"X": xn}, "ml")
    node = helper.make_node("Imputer", ["X"], ["Y"], domain="ai.onnx.ml", imputed_value_int64s=[7, 8, 9], replaced_value_int64=-1)
    xi = np.array([[1, -1, 3], [-1, -1, 0], [4, 5, -1]], dtype=np.int64)
    write(out_dir, "ops-imputer-int64", model([node], [vi("X", I64, [None, 3])], [vi("Y", I64, [None, 3])]), {"X": xi}, "exact")
    node = helper.make_node("Binarizer", ["X"], ["Y"], domain="ai.onnx.ml", threshold=0.5)
    write(out_dir, "ops-binarizer", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 4])]), {"X": xn}, "exact")
    node = helper.make_node("OneHotEncoder", ["X"], ["Y"], domain="ai.onnx.ml", cats_int64s=[1, 3, 5, 7], zeros=1)
    write(out_dir, "ops-onehot-int64", model([node], [vi("X", I64, [None, 2])], [vi("Y", F, [None, 2, 4])]),
          {"X": np.array([[1, 5], [7, 2], [3, 3]], dtype=np.int64)}, "exact")
    enc = lambda nodes, i, o, opset=3: model(nodes, i, o, opsets=(ONNX, helper.make_operatorsetid("ai.onnx.ml", opset)))
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain="ai.onnx.ml", keys_strings=["cat", "dog", "bird"],
                            values_int64s=[1, 2, 3], default_int64=-9)
    write(out_dir, "ops-label-encoder-str-int", enc([node], [vi("X", STR, [None])], [vi("Y", I64, [None])], 2),
          {"X": np.array(["dog", "fish", "bird", "cat"])}, "exact")
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain="ai.onnx.ml", keys_int64s=[1, 2], values_strings=["one", "two"],
                            default_string="other")
    write(out_dir, "ops-label-encoder-int-str", enc([node], [vi("X", I64, [None])], [vi("Y", STR, [None])], 2),
          {"X": np.array([2, 1, 5], dtype=np.int64)}, "exact")
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain="ai.onnx.ml", keys_floats=[0.5, 1.5, -2.0],
                            values_floats=[10.0, 20.0, 30.0], default_float=-1.0)
    write(out_dir, "ops-label-encoder-float-float", enc([node], [vi("X", F, [None])], [vi("Y", F, [None])], 2),
          {"X": np.array([1.5, 0.5, 3.0, -2.0], dtype=np.float32)}, "exact")
    node = helper.make_node("CategoryMapper", ["X"], ["Y"], domain="ai.onnx.ml", cats_strings=["a", "b", "c"], cats_int64s=[10, 20, 30],
                            default_int64=-1)
    write(out_dir, "ops-category-mapper-str-int", model([node], [vi("X", STR, [None])], [vi("Y", I64, [None])]),
          {"X": np.array(["b", "z", "a"])}, "exact")
    node = helper.make_node("CategoryMapper", ["X"], ["Y"], domain="ai.onnx.ml", cats_strings=["a", "b", "c"], cats_int64s=[10, 20, 30],
                            default_string="none")
    write(out_dir, "ops-category-mapper-int-str", model([node], [vi("X", I64, [None])], [vi("Y", STR, [None])]),
          {"X": np.array([30, 11, 10], dtype=np.int64)}, "exact")
    idx = numpy_helper.from_array(np.array([3, 0, 2], dtype=np.int64), "idx")
    node = helper.make_node("ArrayFeatureExtractor", ["X", "idx"], ["Y"], domain="ai.onnx.ml")
    write(out_dir, "ops-array-feature-extractor", model([node], [vi("X", F, [None, 4])], [vi("Y", F, [None, 3])], [idx]), {"X": xn}, "exact")
    node = helper.make_node("FeatureVectorizer", ["A", "B"], ["Y"], domain="ai.onnx.ml", inputdimensions=[2, 3])
    write(out_dir, "ops-feature-vectorizer", model([node], [vi("A", I64, [None, 2]), vi("B", I64, [None, 3])], [vi("Y", F, [None, 5])]),
          {"A": np.arange(12, dtype=np.int64).reshape(6, 2) - 5, "B": np.arange(18, dtype=np.int64).reshape(6, 3)}, "exact")
    zm = helper.make_node("ZipMap", ["P"], ["Z"], domain="ai.onnx.ml", classlabels_strings=["p", "q", "r"])
    zout = helper.make_value_info("Z", helper.make_sequence_type_proto(helper.make_map_type_proto(STR, helper.make_tensor_type_proto(F, []))))
    p = np.abs(xn[:5, :3])
    write(out_dir, "ops-zipmap-strings", model([zm], [vi("P", F, [None, 3])], [zout]), {"P": p}, "exact")

    # control flow and standard operators the real models do not cover
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [vi("t", F, [None, 4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", F, [None, 4])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    write(out_dir, "ops-if", model(nodes, [vi("x", F, [None, 4])], [vi("y", F, [None, 4])], [zero]), {"x": xn[:3]}, "exact")
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "x"], ["acc_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["acc_out", "two"], ["scan_out"])],
        "body", [vi("i", I64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), vi("acc_in", F, [4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), vi("acc_out", F, [4]), vi("scan_out", F, [4])])
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    trip = numpy_helper.from_array(np.array(5, np.int64), "trip")
    nodes = [helper.make_node("Loop", ["trip", "", "init"], ["final", "stacked"], body=body)]
    write(out_dir, "ops-loop", model(nodes, [vi("init", F, [4]), vi("x", F, [4])], [vi("final", F, [4]), vi("stacked", F, [None, 4])], [two, trip]),
          {"init": xn[0], "x": xn[1]}, "exact")
    r = np.random.default_rng(8)
    t = lambda a, n: numpy_helper.from_array(a.astype(np.float32), n)
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5),
             helper.make_node("Gelu", ["ln"], ["ge"]),
             helper.make_node("GRU", ["ge", "W", "R", "B"], ["Y", "Yh"], hidden_size=5, linear_before_reset=1)]
    inits = [t(r.standard_normal(8), "g"), t(r.standard_normal(8), "b"), t(r.standard_normal((1, 15, 8)) * 0.3, "W"),
             t(r.standard_normal((1, 15, 5)) * 0.3, "R"), t(r.standard_normal((1, 30)) * 0.1, "B")]
    opsets = (helper.make_operatorsetid("", 20),)
    write(out_dir, "ops-layernorm-gelu-gru", model(nodes, [vi("x", F, [6, 1, 8])], [vi("Y", F, None), vi("Yh", F, None)], inits, opsets),
          {"x": r.standard_normal((6, 1, 8)).astype(np.float32)}, "rnn")
    scales = numpy_helper.from_array(np.array([1, 1, 1.5, 2.25], np.float32), "scales")
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", coordinate_transformation_mode="half_pixel")]
    write(out_dir, "ops-resize-linear", model(nodes, [vi("x", F, [1, 2, 4, 4])], [vi("y", F, None)], [scales]),
          {"x": r.standard_normal((1, 2, 4, 4)).astype(np.float32)}, "rnn")
