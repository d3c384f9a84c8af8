//! Chat templates: the Jinja template stored in the GGUF file, rendered with
//! minijinja (plus Python string methods, which many templates call).

use minijinja::{context, Environment, Error, ErrorKind};
use serde::Serialize;

use crate::error::{Result, RuntimeError};

/// One chat message as templates see it (OpenAI's shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
    /// The author's name, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant's tool calls (OpenAI's shape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// The call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// Gemma's own template (as google/gemma-3 ships it in
/// tokenizer_config.json), for files converted without one: the system
/// message opens the first user turn, the assistant's role is `model`, a
/// tool's answer comes back as a user turn (Gemma knows no other roles).
const GEMMA: &str = "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}{%- elif message['role'] == 'tool' -%}{%- set role = \"user\" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}";

/// The template for an architecture whose file carries none.
pub(crate) fn default_for(architecture: &str) -> Option<&'static str> {
    architecture.starts_with("gemma").then_some(GEMMA)
}

pub(crate) struct ChatTemplate {
    env: Environment<'static>,
}

/// ChatML, for models whose file carries no template.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

impl ChatTemplate {
    pub(crate) fn new(source: Option<&str>) -> Result<Self> {
        let mut env = Environment::new();
        // as transformers renders chat templates
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default delimiters"),
        );
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source.unwrap_or(CHATML).to_string())
            .map_err(|e| RuntimeError::Unloadable(format!("chat template: {e}")))?;
        Ok(ChatTemplate { env })
    }

    /// The prompt for `messages`, ending where the assistant's answer starts.
    pub(crate) fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&serde_json::Value>,
        bos: &str,
        eos: &str,
    ) -> Result<String> {
        let t = self.env.get_template("chat").expect("added at load");
        t.render(context! {
            messages => minijinja::Value::from(minijinja::value::Serde(messages)),
            tools => minijinja::Value::from(minijinja::value::Serde(tools)),
            add_generation_prompt => true,
            bos_token => bos,
            eos_token => eos,
        })
        .map_err(|e| {
            RuntimeError::BadInput(format!(
                "the model's chat template refused the messages: {e}"
            ))
        })
    }
}
