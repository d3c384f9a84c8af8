pub(crate) mod hub;
pub(crate) mod infer;
pub(crate) mod node;
pub(crate) mod openai;
pub(crate) mod pay;
pub(crate) mod session;
pub(crate) mod upload;
