/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The model cannot be parsed or compiled (a client error about the model).
    #[error("model cannot be loaded: {0}")]
    Unloadable(String),
    /// The model uses operators the engine cannot run.
    #[error("model cannot run on this node's engine ({engine}): operators it does not support: {}", .0.join(", "), engine = gradnet_onnx::ENGINE)]
    Unsupported(Vec<String>),
    /// The inputs do not fit the model's declared inputs.
    #[error("{0}")]
    BadInput(String),
    /// The model failed while running on valid inputs.
    #[error("inference failed: {0}")]
    Execution(String),
    /// The model needs more memory or time than this node gives one run.
    #[error("{0}")]
    Budget(String),
    /// Prompt and completion do not fit the model's context window.
    #[error("{0}")]
    ContextLength(String),
    /// The configured engine cannot be started (e.g. its library is missing).
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
}

/// A runtime operation's result.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
