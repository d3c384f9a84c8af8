//! OpenGradient's inference precompile ABI (their SDK's
//! `abi/InferencePrecompile.abi`), so that contracts written for it compile
//! and run unchanged, and the conversions between its fixed-point tensors
//! and gradnet's.
//!
//! A `Number` is `value * 10^-decimals`; a number tensor is flat with its
//! shape alongside. Struct names do not enter the ABI (only their types
//! do), so the library-qualified names of the original (`TensorLib.Number`)
//! are plain here.

use alloy_sol_types::sol;
use gradnet_types::json::FixedPoint;
use gradnet_types::tensor::NamedTensors;
use serde_json::{json, Value};

sol! {
    #[derive(Debug, PartialEq)]
    struct Number { int128 value; int128 decimals; }
    #[derive(Debug, PartialEq)]
    struct MultiDimensionalNumberTensor { string name; Number[] values; uint32[] shape; }
    #[derive(Debug, PartialEq)]
    struct StringTensor { string name; string[] values; }
    #[derive(Debug, PartialEq)]
    struct JsonScalar { string name; string value; }
    #[derive(Debug, PartialEq)]
    struct ModelInput { MultiDimensionalNumberTensor[] numbers; StringTensor[] strings; }
    #[derive(Debug, PartialEq)]
    struct ModelInferenceRequest { uint8 mode; string modelCID; ModelInput input; }
    #[derive(Debug, PartialEq)]
    struct ModelOutput {
        MultiDimensionalNumberTensor[] numbers;
        StringTensor[] strings;
        JsonScalar[] jsons;
        bool is_simulation_result;
    }
    #[derive(Debug, PartialEq)]
    struct ToolCall { string id; string name; string arguments; }
    #[derive(Debug, PartialEq)]
    struct ChatMessage { string role; string content; string name; string tool_call_id; ToolCall[] tool_calls; }
    #[derive(Debug, PartialEq)]
    struct ToolDefinition { string description; string name; string parameters; }
    #[derive(Debug, PartialEq)]
    struct LLMChatRequest {
        uint8 mode;
        string modelCID;
        ChatMessage[] messages;
        ToolDefinition[] tools;
        string tool_choice;
        uint32 max_tokens;
        string[] stop_sequence;
        uint32 temperature;
    }
    #[derive(Debug, PartialEq)]
    struct LLMChatResponse { string finish_reason; ChatMessage message; }
    #[derive(Debug, PartialEq)]
    struct LLMCompletionRequest {
        uint8 mode;
        string modelCID;
        string prompt;
        uint32 max_tokens;
        string[] stop_sequence;
        uint32 temperature;
    }
    #[derive(Debug, PartialEq)]
    struct LLMCompletionResponse { string answer; }

    #[derive(Debug, PartialEq)]
    interface InferencePrecompile {
        event ModelInferenceEvent(string inferenceID, ModelInferenceRequest request, ModelOutput response);
        event LLMCompletionEvent(string inferenceID, LLMCompletionRequest request, LLMCompletionResponse response);
        event LLMChat(string inferenceID, LLMChatRequest request, LLMChatResponse response);
        function runModelInference(ModelInferenceRequest request) external returns (ModelOutput memory);
        function runLLMCompletion(LLMCompletionRequest request) external returns (LLMCompletionResponse memory);
        function runLLMChat(LLMChatRequest request) external returns (LLMChatResponse memory);
    }
}

/// The model input as gradnet's fixed-point JSON (what `/v1/infer`
/// accepts), for the same parsing and dtype checks as the HTTP API.
pub fn input_json(input: &ModelInput) -> Value {
    let numbers: Vec<Value> = input
        .numbers
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "values": t.values.iter().map(|n| json!({
                    "value": n.value,
                    "decimals": n.decimals,
                })).collect::<Vec<_>>(),
                "shape": t.shape,
            })
        })
        .collect();
    let strings: Vec<Value> = input
        .strings
        .iter()
        .map(|t| json!({"name": t.name, "values": t.values}))
        .collect();
    json!({"numbers": numbers, "strings": strings})
}

/// Output tensors as the ABI's `ModelOutput`: numbers in their shortest
/// exact decimal form with non-negative `decimals` (as OpenGradient's SDK
/// writes them), strings as string tensors.
pub fn model_output(
    tensors: &NamedTensors,
    is_simulation_result: bool,
) -> Result<ModelOutput, String> {
    let v = serde_json::to_value(FixedPoint(tensors)).map_err(|e| e.to_string())?;
    let mut out = ModelOutput {
        numbers: vec![],
        strings: vec![],
        jsons: vec![],
        is_simulation_result,
    };
    for t in v["numbers"].as_array().into_iter().flatten() {
        let mut values = vec![];
        for n in t["values"].as_array().into_iter().flatten() {
            let (value, decimals) = fixed(n).ok_or_else(|| {
                format!("output `{}` holds a number the ABI cannot carry", t["name"])
            })?;
            values.push(Number { value, decimals });
        }
        out.numbers.push(MultiDimensionalNumberTensor {
            name: t["name"].as_str().unwrap_or_default().to_string(),
            values,
            shape: t["shape"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    d.as_u64()
                        .and_then(|d| u32::try_from(d).ok())
                        .ok_or("output dimension over 2^32")
                })
                .collect::<Result<_, _>>()?,
        });
    }
    for t in v["strings"].as_array().into_iter().flatten() {
        out.strings.push(StringTensor {
            name: t["name"].as_str().unwrap_or_default().to_string(),
            values: t["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect(),
        });
    }
    Ok(out)
}

/// (value, decimals) with decimals ≥ 0: 100 is (100, 0), not (1, -2).
fn fixed(n: &Value) -> Option<(i128, i128)> {
    let value = n["value"]
        .as_i64()
        .map(i128::from)
        .or_else(|| n["value"].as_str()?.parse().ok())?;
    let decimals = n["decimals"].as_i64()?;
    if decimals >= 0 {
        return Some((value, decimals as i128));
    }
    let scale = 10i128.checked_pow(u32::try_from(-decimals).ok()?)?;
    Some((value.checked_mul(scale)?, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::{SolCall, SolValue};
    use gradnet_types::tensor::{Tensor, TensorData};

    #[test]
    fn selectors_are_those_of_opengradients_precompile() {
        // canonical signatures: only the types matter
        let s = InferencePrecompile::runModelInferenceCall::SIGNATURE;
        assert_eq!(
            s,
            "runModelInference((uint8,string,((string,(int128,int128)[],uint32[])[],(string,string[])[])))"
        );
        assert_eq!(
            InferencePrecompile::runLLMCompletionCall::SIGNATURE,
            "runLLMCompletion((uint8,string,string,uint32,string[],uint32))"
        );
        assert_eq!(
            InferencePrecompile::runLLMChatCall::SIGNATURE,
            "runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],(string,string,string)[],string,uint32,string[],uint32))"
        );
    }

    #[test]
    fn inputs_and_outputs_convert_exactly() {
        let req = ModelInferenceRequest {
            mode: 3,
            modelCID: "b3abc".into(),
            input: ModelInput {
                numbers: vec![MultiDimensionalNumberTensor {
                    name: "x".into(),
                    values: vec![
                        Number {
                            value: 15,
                            decimals: 1,
                        },
                        Number {
                            value: -2,
                            decimals: 0,
                        },
                    ],
                    shape: vec![1, 2],
                }],
                strings: vec![StringTensor {
                    name: "s".into(),
                    values: vec!["hi".into()],
                }],
            },
        };
        // through the ABI and back
        let call = InferencePrecompile::runModelInferenceCall {
            request: req.clone(),
        };
        let back =
            InferencePrecompile::runModelInferenceCall::abi_decode(&call.abi_encode()).unwrap();
        assert_eq!(back.request, req);
        let j = input_json(&req.input);
        assert_eq!(
            j["numbers"][0]["values"][0],
            json!({"value": 15, "decimals": 1})
        );
        assert_eq!(j["numbers"][0]["shape"], json!([1, 2]));
        assert_eq!(j["strings"][0]["values"], json!(["hi"]));

        let mut t = NamedTensors::new();
        t.insert(
            "y".into(),
            Tensor::new(vec![3], TensorData::F32(vec![0.1, 100.0, -2.5])).unwrap(),
        );
        t.insert(
            "label".into(),
            Tensor::new(vec![1], TensorData::String(vec!["cat".into()])).unwrap(),
        );
        let out = model_output(&t, true).unwrap();
        let nums: Vec<(i128, i128)> = out.numbers[0]
            .values
            .iter()
            .map(|n| (n.value, n.decimals))
            .collect();
        assert_eq!(nums, vec![(1, 1), (100, 0), (-25, 1)]);
        assert_eq!(out.numbers[0].shape, vec![3]);
        assert_eq!(out.strings[0].values, vec!["cat".to_string()]);
        assert!(out.is_simulation_result);
        // the return data decodes as OpenGradient's ModelOutput
        let bytes = out.abi_encode();
        assert_eq!(ModelOutput::abi_decode(&bytes).unwrap(), out);
    }
}
