//! PIPE over HTTP: a proposer sends the calls its block building found
//! unanswered to the sampled inference nodes ([`dispatch`]), which answer
//! each with a signed outcome ([`answer`]).

pub mod answer;
pub mod byzantine;
pub mod dispatch;

pub use dispatch::Dispatcher;
