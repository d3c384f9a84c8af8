//! gradnet's integration tests, in one binary (the whole stack is linked
//! once): the `gradnet` binary run as processes, real servers on loopback
//! ports, devnets of several validators, real models and real clients.

mod common;

mod api;
mod bad_input;
mod binary_body;
mod byzantine;
mod chain;
mod cli;
mod consensus;
mod console;
mod cpu_generations;
mod crash_points;
mod embeddings;
mod gateway;
mod llm_api;
mod network_faults;
mod open_node;
mod openai_client;
mod payments;
mod python_sdk;
mod real_models;
mod soak;
mod zk;
