"""The network tests run against a devnet the Rust harness starts
(crates/gradnet/tests/it/python_sdk.rs), described in ``GRADNET_SDK_DEVNET``
(JSON: inference node URLs, a validator's gateway and JSON-RPC, funded dev
keys, the gradnet binary, the models directory)."""

import json
import os

import pytest


@pytest.fixture(scope="session")
def devnet():
    raw = os.environ.get("GRADNET_SDK_DEVNET")
    if not raw:
        pytest.skip("no devnet: these tests run from `cargo test -p gradnet --test it python_sdk` (scripts/test)")
    return json.loads(raw)
