"""The classical-ML part of the conformance corpus: the scikit-learn
estimators people use most, XGBoost and LightGBM, trained here on fixed
synthetic data and exported with skl2onnx / onnxmltools (versions pinned by
scripts/test). Training takes a few seconds."""
import warnings

import numpy as np

warnings.filterwarnings("ignore")

N_TEST = 64


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, 8)).astype(np.float32)
    X[:, 3] *= 5.0
    X[:, 5] = np.round(X[:, 5] * 2)  # a few repeated values (tree ties)
    y = (np.sin(X[:, 0]) * 3 + X[:, 1] * X[:, 2] + 0.5 * X[:, 3] + rng.standard_normal(400) * 0.1).astype(np.float32)
    c2 = (y > np.median(y)).astype(np.int64)
    c3 = np.digitize(y, np.quantile(y, [0.33, 0.66])).astype(np.int64)
    return X, y, c2, c3


def _patch_skl2onnx():
    """skl2onnx 1.20 passes HistGradientBoosting's numpy-bool "missing goes
    left" flags to onnx, which onnx 1.2x refuses; hand it plain ints."""
    import skl2onnx.common.tree_ensemble as te

    if getattr(te.add_node, "_int_missing", False):
        return
    orig = te.add_node

    def add_node(*args, **kwargs):
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return orig(*args, **kwargs)

    add_node._int_missing = True
    te.add_node = add_node


def build(out_dir, write):
    _patch_skl2onnx()
    from skl2onnx import to_onnx
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, MinMaxScaler, Normalizer, OneHotEncoder, StandardScaler

    X, y, c2, c3 = data()
    Xt = X[:N_TEST]

    def sk(name, model, target, X_=X, Xt_=Xt, options=None, family="ml"):
        model.fit(X_, target)
        onx = to_onnx(model, X_[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        write(out_dir, name, onx.SerializeToString(), {"X": Xt_}, family)

    nozip = {"zipmap": False}
    sk("sk-linear-regression", linear_model.LinearRegression(), y)
    sk("sk-ridge", linear_model.Ridge(alpha=0.5), y)
    sk("sk-logistic-binary", linear_model.LogisticRegression(max_iter=500), c2)
    sk("sk-logistic-multiclass", linear_model.LogisticRegression(max_iter=500), c3, options=nozip)
    sk("sk-logistic-zipmap", linear_model.LogisticRegression(max_iter=500), c3)
    sk("sk-decision-tree-regressor", tree.DecisionTreeRegressor(max_depth=6, random_state=0), y)
    sk("sk-decision-tree-classifier", tree.DecisionTreeClassifier(max_depth=5, random_state=0), c3, options=nozip)
    sk("sk-random-forest-regressor", ensemble.RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0), y)
    sk("sk-random-forest-classifier", ensemble.RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0), c3, options=nozip)
    sk("sk-extra-trees-regressor", ensemble.ExtraTreesRegressor(n_estimators=10, max_depth=5, random_state=0), y)
    sk("sk-gradient-boosting-regressor", ensemble.GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0), y)
    sk("sk-gradient-boosting-binary", ensemble.GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0), c2, options=nozip)
    sk("sk-gradient-boosting-multiclass", ensemble.GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0), c3, options=nozip)
    sk("sk-hist-gradient-boosting-regressor", ensemble.HistGradientBoostingRegressor(max_iter=30, random_state=0), y)
    sk("sk-hist-gradient-boosting-classifier", ensemble.HistGradientBoostingClassifier(max_iter=20, random_state=0), c3, options=nozip)
    sk("sk-svr-rbf", svm.SVR(kernel="rbf", C=2.0), y)
    sk("sk-svr-poly", svm.SVR(kernel="poly", degree=3), y)
    sk("sk-svc-rbf", svm.SVC(kernel="rbf", random_state=0), c3, options=nozip)
    sk("sk-svc-probability", svm.SVC(kernel="rbf", probability=True, random_state=0), c2, options=nozip)
    sk("sk-linear-svc", svm.LinearSVC(random_state=0), c3)
    sk("sk-linear-svr", svm.LinearSVR(random_state=0, max_iter=5000), y)
    sk("sk-knn-regressor", neighbors.KNeighborsRegressor(n_neighbors=5), y)
    sk("sk-knn-classifier", neighbors.KNeighborsClassifier(n_neighbors=5), c3, options=nozip)
    sk("sk-mlp-regressor", neural_network.MLPRegressor(hidden_layer_sizes=(32, 16), max_iter=300, random_state=0), y)
    sk("sk-mlp-classifier", neural_network.MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0), c3, options=nozip)
    sk("sk-scaler-logistic", make_pipeline(StandardScaler(), linear_model.LogisticRegression(max_iter=500)), c3, options=nozip)
    sk("sk-minmax-svr", make_pipeline(MinMaxScaler(), svm.SVR()), y)
    sk("sk-normalizer-binarizer-ridge", make_pipeline(Normalizer(), Binarizer(threshold=0.1), linear_model.Ridge()), y)

    # missing values, imputed
    Xm = X.copy()
    Xm[::7, 2] = np.nan
    Xm[::11, 4] = np.nan
    sk("sk-imputer-forest", make_pipeline(SimpleImputer(strategy="median"), ensemble.RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0)), y, Xm, Xm[:N_TEST])

    # a categorical string column one-hot encoded next to scaled numbers
    cats = np.array(["red", "green", "blue", "violet"])[(np.abs(X[:, 6] * 3).astype(int)) % 4]
    num = X[:, :4]
    import pandas as pd

    frame = pd.DataFrame({"a": num[:, 0], "b": num[:, 1], "c": num[:, 2], "d": num[:, 3], "color": cats})
    ct = ColumnTransformer([("num", StandardScaler(), ["a", "b", "c", "d"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"])])
    model = make_pipeline(ct, ensemble.GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0))
    model.fit(frame, y)
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [(c, FloatTensorType([None, 1])) for c in "abcd"] + [("color", StringTensorType([None, 1]))]
    onx = to_onnx(model, initial_types=types, target_opset={"": 17, "ai.onnx.ml": 3})
    test = frame.iloc[:N_TEST]
    inputs = {c: test[c].to_numpy().astype(np.float32).reshape(-1, 1) for c in "abcd"}
    inputs["color"] = test["color"].to_numpy().astype(str).reshape(-1, 1)
    inputs["color"][3, 0] = "unseen"
    write(out_dir, "sk-column-transformer-onehot-gbr", onx.SerializeToString(), inputs, "ml")

    xgb_lgbm(out_dir, write, X, y, c2, c3, Xt)


def xgb_lgbm(out_dir, write, X, y, c2, c3, Xt):
    import lightgbm
    import xgboost
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("X", FloatTensorType([None, X.shape[1]]))]

    def conv(name, model, target, convert):
        model.fit(X, target)
        onx = convert(model, initial_types=types, target_opset=15)
        write(out_dir, name, onx.SerializeToString(), {"X": Xt}, "ml")

    conv("xgb-regressor", xgboost.XGBRegressor(n_estimators=50, max_depth=4, random_state=0), y, convert_xgboost)
    conv("xgb-binary", xgboost.XGBClassifier(n_estimators=30, max_depth=3, random_state=0), c2, convert_xgboost)
    conv("xgb-multiclass", xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0), c3, convert_xgboost)
    conv("lgbm-regressor", lightgbm.LGBMRegressor(n_estimators=50, num_leaves=15, random_state=0, verbose=-1), y, convert_lightgbm)
    conv("lgbm-binary", lightgbm.LGBMClassifier(n_estimators=30, num_leaves=15, random_state=0, verbose=-1), c2, convert_lightgbm)
    conv("lgbm-multiclass", lightgbm.LGBMClassifier(n_estimators=20, num_leaves=15, random_state=0, verbose=-1), c3, convert_lightgbm)
