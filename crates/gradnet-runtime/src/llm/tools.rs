//! Tool calls in a model's answer, in the conventions chat templates teach:
//! Hermes / Qwen (`<tool_call>{...}</tool_call>`), Mistral
//! (`[TOOL_CALLS] [...]`), and Llama 3.1 (the whole answer one JSON object
//! with `name` and `parameters`).

use serde_json::Value;

/// A function call found in generated text.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The function's name.
    pub name: String,
    /// The arguments object.
    pub arguments: Value,
}

fn call(v: &Value) -> Option<ToolCall> {
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = v
        .get("arguments")
        .or(v.get("parameters"))
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    // some models write the arguments as a JSON string
    let arguments = match arguments {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        a => a,
    };
    Some(ToolCall { name, arguments })
}

/// The text before the calls and the calls, when the answer makes any.
pub fn parse_tool_calls(text: &str) -> Option<(String, Vec<ToolCall>)> {
    if let Some(start) = text.find("<tool_call>") {
        let mut calls = vec![];
        let mut rest = &text[start..];
        while let Some(open) = rest.find("<tool_call>") {
            let body_start = open + "<tool_call>".len();
            let end = rest[body_start..]
                .find("</tool_call>")
                .map(|e| body_start + e);
            let body = &rest[body_start..end.unwrap_or(rest.len())];
            calls.push(call(&serde_json::from_str(body.trim()).ok()?)?);
            match end {
                Some(e) => rest = &rest[e + "</tool_call>".len()..],
                None => break,
            }
        }
        return Some((text[..start].trim().to_string(), calls));
    }
    if let Some(start) = text.find("[TOOL_CALLS]") {
        let v: Value = serde_json::from_str(text[start + "[TOOL_CALLS]".len()..].trim()).ok()?;
        let calls = v.as_array()?.iter().map(call).collect::<Option<Vec<_>>>()?;
        return Some((text[..start].trim().to_string(), calls));
    }
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    if v.get("parameters").is_some() || v.get("arguments").is_some() {
        return Some((String::new(), vec![call(&v)?]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_usual_conventions_parse() {
        let hermes = "Let me check.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>{\"name\": \"time\", \"arguments\": \"{\\\"tz\\\": \\\"CET\\\"}\"}</tool_call>";
        let (before, calls) = parse_tool_calls(hermes).unwrap();
        assert_eq!(before, "Let me check.");
        assert_eq!(
            calls[0],
            ToolCall {
                name: "weather".into(),
                arguments: json!({"city": "Paris"})
            }
        );
        assert_eq!(calls[1].arguments, json!({"tz": "CET"}));
        let (_, calls) =
            parse_tool_calls("[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"x\": 1}}]")
                .unwrap();
        assert_eq!(calls[0].name, "f");
        let (_, calls) = parse_tool_calls("{\"name\": \"g\", \"parameters\": {\"y\": 2}}").unwrap();
        assert_eq!(calls[0].arguments, json!({"y": 2}));
        assert!(parse_tool_calls("The capital of France is Paris.").is_none());
        assert!(parse_tool_calls("{\"capital\": \"Paris\"}").is_none());
        assert!(parse_tool_calls("<tool_call>not json</tool_call>").is_none());
    }
}
