//! Tool calls in a model's answer, in the conventions chat templates teach:
//! Hermes / Qwen (`<tool_call>{...}</tool_call>`), Mistral
//! (`[TOOL_CALLS] [...]`), and Llama 3.1 (the whole answer one JSON object
//! with `name` and `parameters`).

use serde::Serialize;
use serde_json::{json, Value};

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

/// How a model writes tool calls: in its chat template's convention, or,
/// for a template without tools, in a JSON answer the node teaches it in a
/// system message (as llama.cpp's server does for such models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStyle {
    /// `<tool_call>{"name", "arguments"}</tool_call>` (Hermes, Qwen).
    Hermes,
    /// `[TOOL_CALLS] [{"name", "arguments"}]` (Mistral).
    Mistral,
    /// One object `{"name", "parameters"}` (Llama 3.1).
    Llama3,
    /// `{"tool_calls": [{"name", "arguments"}]}` or `{"response": "…"}`.
    Generic,
}

impl ToolStyle {
    /// The convention a chat template teaches (`None`: no template).
    pub fn of_template(template: Option<&str>) -> ToolStyle {
        match template {
            Some(t) if t.contains("tools") && t.contains("<tool_call>") => ToolStyle::Hermes,
            Some(t) if t.contains("tools") && t.contains("[TOOL_CALLS]") => ToolStyle::Mistral,
            Some(t) if t.contains("tools") => ToolStyle::Llama3,
            _ => ToolStyle::Generic,
        }
    }
}

/// The system message that teaches a model without a tool template to
/// call `tools` (OpenAI's `tools` list) in the generic convention.
pub fn generic_prompt(tools: &Value, required: bool) -> String {
    let list: Vec<Value> = tools
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.get("function").cloned().unwrap_or_else(|| t.clone()))
        .collect();
    let how = if required {
        "Answer with a JSON object {\"tool_calls\": [{\"name\": <tool name>, \"arguments\": {<arguments>}}]} that calls the tools."
    } else {
        "To call tools, answer with a JSON object {\"tool_calls\": [{\"name\": <tool name>, \"arguments\": {<arguments>}}]}; to answer directly, answer {\"response\": \"<your answer>\"}."
    };
    format!(
        "You can use these tools:\n{}\n{how}",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    )
}

/// Calls one answer may make at once: small models tend to repeat a call
/// until the token limit.
pub const MAX_PARALLEL_CALLS: usize = 8;

/// What an answer may be, as a constraint (`{"schema", "prefix"?,
/// "suffix"?}`): a call to one of `tools` (only `only` if named), at most
/// one unless `parallel` (then at most `MAX_PARALLEL_CALLS`), or with
/// `or_text` (generic style) a plain answer.
pub fn call_constraint(
    style: ToolStyle,
    tools: &Value,
    only: Option<&str>,
    parallel: bool,
    or_text: bool,
) -> Result<Value, String> {
    let mut calls = vec![];
    for t in tools.as_array().into_iter().flatten() {
        let f = t.get("function").unwrap_or(t);
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or("every tool needs function.name")?;
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let params = f
            .get("parameters")
            .cloned()
            .unwrap_or(json!({"type": "object", "properties": {}}));
        let args = if style == ToolStyle::Llama3 {
            "parameters"
        } else {
            "arguments"
        };
        calls.push(json!({
            "type": "object",
            "properties": {"name": {"const": name}, args: params},
            "required": ["name", args],
            "propertyOrdering": ["name", args],
        }));
    }
    if calls.is_empty() {
        return Err(match only {
            Some(o) => format!("tool_choice names `{o}`, which is not among the tools"),
            None => "`tools` is empty".into(),
        });
    }
    let call = json!({"anyOf": calls});
    let list = json!({"type": "array", "items": call, "minItems": 1,
        "maxItems": if parallel { MAX_PARALLEL_CALLS } else { 1 }});
    let list = match list {
        Value::Object(mut m) => {
            m.retain(|_, v| !v.is_null());
            Value::Object(m)
        }
        v => v,
    };
    Ok(match style {
        ToolStyle::Generic => {
            let calls = json!({"type": "object", "properties": {"tool_calls": list},
                "required": ["tool_calls"]});
            let schema = if or_text {
                json!({"anyOf": [calls, {"type": "object",
                    "properties": {"response": {"type": "string"}}, "required": ["response"]}]})
            } else {
                calls
            };
            json!({ "schema": schema })
        }
        ToolStyle::Hermes => {
            json!({"schema": call, "prefix": "<tool_call>\n", "suffix": "\n</tool_call>"})
        }
        ToolStyle::Mistral => json!({"schema": list, "prefix": "[TOOL_CALLS] "}),
        ToolStyle::Llama3 => json!({ "schema": call }),
    })
}

/// A generic-style answer: its text (from `response`) and its calls.
pub fn parse_generic(text: &str) -> Option<(String, Vec<ToolCall>)> {
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    if let Some(r) = v.get("response").and_then(Value::as_str) {
        return Some((r.to_string(), vec![]));
    }
    let calls = v
        .get("tool_calls")?
        .as_array()?
        .iter()
        .map(call)
        .collect::<Option<Vec<_>>>()?;
    Some((String::new(), calls))
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
        let generic =
            "{\"tool_calls\": [{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}]}";
        assert_eq!(parse_generic(generic).unwrap().1[0].name, "weather");
        assert_eq!(
            parse_generic("{\"response\": \"Hi.\"}").unwrap(),
            ("Hi.".to_string(), vec![])
        );
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
