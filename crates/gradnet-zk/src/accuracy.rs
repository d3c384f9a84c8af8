//! The quantized circuit against float inference (gradnet's deterministic
//! engine) on a test set: maximum absolute error of the outputs and how
//! often the argmax agrees.

use gradnet_onnx::{Engine, Options, Tensor};

use crate::{QuantModel, ZkError};

/// How far the circuit's fixed-point outputs are from float inference.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Inputs compared.
    pub samples: usize,
    /// The circuit's scale (values are integers at 2^frac_bits).
    pub frac_bits: u32,
    /// Largest |float − dequantized circuit output| over all outputs.
    pub max_abs_error: f64,
    /// Mean |float − dequantized circuit output| over all outputs.
    pub mean_abs_error: f64,
    /// Samples whose largest output is the same index in both.
    pub argmax_agreement: f64,
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// Runs `onnx` in float and `model` in fixed point on every sample.
pub fn report(onnx: &[u8], model: &QuantModel, samples: &[Vec<f32>]) -> Result<Report, ZkError> {
    let err = |e: gradnet_onnx::Error| ZkError::Model(format!("float inference: {e}"));
    let engine = Engine::new(Options::default());
    let plan = engine.load(onnx).map_err(err)?;
    let (mut max, mut sum, mut n, mut agree) = (0f64, 0f64, 0usize, 0usize);
    for x in samples {
        let t = Tensor::from_vec(model.input_shape.clone(), x.clone()).map_err(err)?;
        let out = engine.run(&plan, vec![t]).map_err(err)?;
        let float: Vec<f32> = out
            .first()
            .ok_or_else(|| ZkError::Model("float inference: no output".into()))?
            .1
            .f32s()
            .map_err(err)?
            .to_vec();
        let quant = model.dequantize(&model.forward(&model.quantize(x)?)?);
        for (a, b) in float.iter().zip(&quant) {
            let d = (*a as f64 - *b as f64).abs();
            max = max.max(d);
            sum += d;
            n += 1;
        }
        agree += (argmax(&float) == argmax(&quant)) as usize;
    }
    Ok(Report {
        samples: samples.len(),
        frac_bits: model.frac_bits,
        max_abs_error: max,
        mean_abs_error: sum / n.max(1) as f64,
        argmax_agreement: agree as f64 / samples.len().max(1) as f64,
    })
}
