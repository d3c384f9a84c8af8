//! gradnet-types' integration tests, in one binary.

mod decoders;
