//! gradnet-inference's integration tests, in one binary.

mod decoders;
