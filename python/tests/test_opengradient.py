"""OpenGradient's own SDK (`opengradient`, pinned), unchanged, against the
devnet: `Alpha.infer` through the OpenGradient-interface hub the devnet
predeploys at the SDK's default address, in VANILLA, ZKML and TEE; LLM chat,
streaming and completion at a node (`LLM.from_url`) and through the TEE
registry (`og.LLM(rpc_url=…, tee_registry_address=…)`: the registry's
`getActiveTEEs(uint8)` and the TLS certificate the enclave attests); and its
workflow contracts, which gradnet refuses with a reason (no price feed)."""

import asyncio
import time

import numpy as np
import opengradient as og
import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3

import gradnet
from gradnet.chain import REGISTRY, Chain


def _selector(sig):
    return function_signature_to_4byte_selector(sig)

MLP = "demo-mlp/model.onnx"
TEE_REGISTRY = Web3.to_checksum_address("0x00000000000000000000000000000000000000f8")
ROW = [[0.5, -1.0, 0.25, 3.0]]


@pytest.fixture(scope="module")
def model(devnet):
    return gradnet.Node(devnet["nodes"][0]).resolve(MLP)


def test_alpha_infer_in_every_mode(devnet, model):
    alpha = og.Alpha(private_key=devnet["keys"][1], rpc_url=devnet["rpc"])
    want = Chain(devnet["rpc"]).simulate(model, {"x": ROW}).numbers["y"]
    for mode in (og.InferenceMode.VANILLA, og.InferenceMode.TEE, og.InferenceMode.ZKML):
        r = alpha.infer(model, mode, {"x": ROW})
        assert r.transaction_hash, mode
        y = np.asarray(r.model_output["y"], dtype=np.float64)
        if mode == og.InferenceMode.ZKML:
            # the circuit's fixed-point output: within its quantization
            np.testing.assert_allclose(y, want, atol=0.01, err_msg=str(mode))
        else:
            np.testing.assert_allclose(y, want, rtol=1e-6, err_msg=str(mode))
    # a TEE answer's `jsons` parse as JSON (the SDK json.loads each one)
    tee = alpha.infer(model, og.InferenceMode.TEE, {"x": ROW})
    assert tee.model_output["tee"].item()["enclave"] == "dev", tee.model_output


def _free_llm(devnet):
    """Each node's operator makes `smollm2` free (OpenGradient's SDK pays
    in its own x402 network, not this chain's escrow)."""
    prices_t = "(uint256,uint256,uint256,(string,uint256,uint256,uint256)[])"
    for key in devnet["operators"]:
        chain = Chain(devnet["rpc"], key)
        data = _selector("prices(address)") + abi_encode(["address"], [chain.account.address])
        (current,) = abi_decode([prices_t], bytes(chain.w3.eth.call({"to": REGISTRY, "data": data})))
        models = [m for m in current[3] if m[0] != "smollm2"] + [("smollm2", 0, 0, 0)]
        new = (current[0], current[1], current[2], models)
        chain.send(REGISTRY, _selector(f"setPrices({prices_t})") + abi_encode([prices_t], [new]))
    # nodes read their prices from the chain every few seconds
    for url in devnet["nodes"]:
        node = gradnet.Node(url)
        deadline = time.time() + 60
        while not any(m.get("model") == "smollm2" for m in node.get("/api/v0/payments")["prices"].get("models", [])):
            assert time.time() < deadline, f"{url} did not read its new prices"
            time.sleep(0.5)


def _chat_messages():
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}]


async def _llm_calls(llm):
    chat = await llm.chat(model="openai/smollm2", messages=_chat_messages(), max_tokens=30, temperature=0.0)
    text = chat.chat_output["content"]
    pieces = []
    stream = await llm.chat(model="openai/smollm2", messages=_chat_messages(), max_tokens=30, temperature=0.0,
                            stream=True)
    async for chunk in stream:
        for c in chunk.choices or []:
            if c.delta and c.delta.content:
                pieces.append(c.delta.content)
    done = await llm.completion(model="openai/smollm2", prompt="Once upon a time", max_tokens=12)
    return text, "".join(pieces), done.completion_output


def test_llm_at_a_node_and_through_the_tee_registry(devnet):
    _free_llm(devnet)
    key = devnet["keys"][1]
    text, streamed, completion = asyncio.run(_llm_calls(og.LLM.from_url(key, devnet["nodes"][0])))
    assert "Paris" in text and streamed == text, (text, streamed)
    assert completion, "the completion's text (top-level `completion`)"
    # the registry names the enclaves, their HTTPS endpoints and the
    # certificates they attested; the SDK pins that certificate
    llm = og.LLM(private_key=key, rpc_url=devnet["rpc"], tee_registry_address=TEE_REGISTRY)
    text2, streamed2, completion2 = asyncio.run(_llm_calls(llm))
    assert (text2, streamed2, completion2) == (text, streamed, completion)


def test_workflow_contracts_are_refused_with_a_reason(devnet, model):
    alpha = og.Alpha(private_key=devnet["keys"][1], rpc_url=devnet["rpc"])
    query = og.HistoricalInputQuery(base="ETH", quote="USD", total_candles=4, candle_duration_in_mins=60,
                                    order=og.CandleOrder.ASCENDING, candle_types=[og.CandleType.CLOSE])
    address = alpha.new_workflow(model, query, "x")
    w3 = Web3(Web3.HTTPProvider(devnet["rpc"]))
    assert w3.eth.get_code(address), "deployed"
    run = function_signature_to_4byte_selector("run()")
    r = w3.provider.make_request("eth_call", [{"to": address, "data": "0x" + run.hex()}, "latest"])
    assert "price feeds are not served on gradnet" in r["error"]["message"], r
