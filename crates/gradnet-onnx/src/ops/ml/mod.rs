//! The ONNX-ML domain (`ai.onnx.ml`): tree ensembles, linear and SVM
//! models, preprocessing and encoders, as scikit-learn, XGBoost and
//! LightGBM models exported to ONNX use them.

pub(crate) fn ctor(_op: &str) -> Option<super::Ctor> {
    None
}
