"""web3.py (pinned), unchanged, against the devnet's JSON-RPC: reads at
recent blocks while blocks arrive every 100 ms, filters, traces of a
succeeding and a reverting transaction compared with what each did,
call overrides, access lists, block receipts, transactions by position,
peers, the blob base fee — and clear errors for what is not supported."""

import time

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

# runtime: x = calldata[0:32]; x == 0 reverts; else slot0 = x, LOG1(x, topic 0x2a)
_RUNTIME = bytes.fromhex("600035801560175780600055600052602a60206000a1005b60006000fd")
_DEPLOY = bytes([0x60, len(_RUNTIME), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3]) + _RUNTIME
# return SLOAD(0) / SELFBALANCE / NUMBER as one word
_RETURN_SLOT0 = "0x60005460005260206000f3"
_RETURN_BALANCE = "0x4760005260206000f3"
_RETURN_NUMBER = "0x4360005260206000f3"
_TOPIC = "0x" + "00" * 31 + "2a"


@pytest.fixture(scope="module")
def w3(devnet):
    return Web3(Web3.HTTPProvider(devnet["rpc"], request_kwargs={"timeout": 60}))


@pytest.fixture(scope="module")
def acct(devnet):
    return Account.from_key(devnet["keys"][2])


def send(w3, acct, to, data=b"", gas=None):
    tx = {"to": to, "data": data, "value": 0, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
          "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
          "maxPriorityFeePerGas": 10**9}
    if to is None:
        del tx["to"]
    tx["gas"] = gas or w3.eth.estimate_gas({k: v for k, v in tx.items() if k != "nonce"} | {"from": acct.address})
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(h, timeout=60)


def word(n):
    return n.to_bytes(32, "big")


@pytest.fixture(scope="module")
def contract(w3, acct):
    r = send(w3, acct, None, _DEPLOY)
    assert r["status"] == 1
    return r["contractAddress"]


def test_reads_at_the_block_just_read_succeed_while_blocks_arrive(w3, acct):
    failures = []
    for _ in range(20):
        n = w3.eth.block_number
        try:
            w3.eth.get_balance(acct.address, n)
            w3.eth.get_transaction_count(acct.address, n)
            w3.eth.call({"to": acct.address, "data": "0x"}, n)
        except Exception as e:  # noqa: BLE001
            failures.append((n, str(e)))
        time.sleep(0.05)
    assert not failures, failures


def test_state_at_past_blocks_is_the_state_then(w3, acct, contract):
    r5 = send(w3, acct, contract, word(5))
    r7 = send(w3, acct, contract, word(7))
    b5, b7 = r5["blockNumber"], r7["blockNumber"]
    slot = lambda n: int.from_bytes(w3.eth.get_storage_at(contract, 0, n), "big")  # noqa: E731
    assert (slot(b5), slot(b7), slot("latest")) == (5, 7, 7)
    assert slot(b5 - 1) == 0
    assert w3.eth.get_code(contract, r5["blockNumber"]) == _RUNTIME
    nonce = w3.eth.get_transaction_count(acct.address, b7)
    assert w3.eth.get_transaction_count(acct.address, b5) == nonce - 1
    # a block the node no longer keeps, and one that does not exist yet
    wait_for = b7 + 130
    while w3.eth.block_number < wait_for:
        time.sleep(0.2)
    with pytest.raises(Web3RPCError, match="historical state is not available"):
        w3.eth.get_storage_at(contract, 0, b5 - 1)
    with pytest.raises(Web3RPCError, match="not found"):
        w3.eth.get_balance(acct.address, w3.eth.block_number + 1000)


def test_filters_report_what_arrived_since_the_last_poll(w3, acct, contract):
    logs = w3.eth.filter({"fromBlock": w3.eth.block_number, "address": contract, "topics": [_TOPIC]})
    blocks = w3.eth.filter("latest")
    r = send(w3, acct, contract, word(11))
    changes = logs.get_new_entries()
    assert [e["transactionHash"] for e in changes] == [r["transactionHash"]]
    assert changes[0]["data"] == word(11)
    assert logs.get_new_entries() == []
    assert r["blockHash"] in blocks.get_new_entries()
    assert [e["transactionHash"] for e in logs.get_all_entries()] == [r["transactionHash"]]
    assert w3.eth.uninstall_filter(logs.filter_id)
    assert not w3.eth.uninstall_filter(logs.filter_id)
    with pytest.raises(Web3RPCError, match="filter not found"):
        w3.eth.get_filter_changes(logs.filter_id)


def _trace(w3, h, tracer=None, **cfg):
    opts = {"tracer": tracer, "tracerConfig": cfg} if tracer else cfg
    r = w3.provider.make_request("debug_traceTransaction", [h.to_0x_hex(), opts])
    assert "error" not in r, r
    return r["result"]


def test_traces_match_what_the_transactions_did(w3, acct, contract):
    ok = send(w3, acct, contract, word(9))
    bad = send(w3, acct, contract, word(0), gas=100_000)
    assert (ok["status"], bad["status"]) == (1, 0)
    tx = w3.eth.get_transaction(ok["transactionHash"])
    call = _trace(w3, ok["transactionHash"], "callTracer", withLog=True)
    assert Web3.to_checksum_address(call["from"]) == acct.address
    assert Web3.to_checksum_address(call["to"]) == contract
    assert call["type"] == "CALL" and call["input"] == tx["input"].to_0x_hex()
    assert int(call["gasUsed"], 16) == ok["gasUsed"] and int(call["gas"], 16) == tx["gas"]
    assert "error" not in call
    (log,) = call["logs"]
    assert [t for t in log["topics"]] == [t.to_0x_hex() for t in ok["logs"][0]["topics"]]
    assert log["data"] == ok["logs"][0]["data"].to_0x_hex()
    failed = _trace(w3, bad["transactionHash"], "callTracer")
    assert failed["error"] == "execution reverted" and int(failed["gasUsed"], 16) == bad["gasUsed"]
    # struct logs: the opcodes that ran, and the failure
    steps = _trace(w3, ok["transactionHash"])
    assert steps["failed"] is False and steps["gas"] == ok["gasUsed"]
    assert [s["op"] for s in steps["structLogs"]][:3] == ["PUSH1", "CALLDATALOAD", "DUP1"]
    assert "SSTORE" in [s["op"] for s in steps["structLogs"]]
    assert _trace(w3, bad["transactionHash"])["failed"] is True
    # prestate in diff mode: the slot before and after, as stored then
    diff = _trace(w3, ok["transactionHash"], "prestateTracer", diffMode=True)
    slot0 = "0x" + "00" * 32
    post = diff["post"][contract.lower()]["storage"][slot0]
    assert int(post, 16) == 9 == int.from_bytes(w3.eth.get_storage_at(contract, 0, ok["blockNumber"]), "big")
    # a whole block
    block = w3.provider.make_request("debug_traceBlockByNumber", [hex(ok["blockNumber"]), {"tracer": "callTracer"}])
    assert ok["transactionHash"].to_0x_hex() in [t["txHash"] for t in block["result"]]
    # a call traced with a state override
    r = w3.provider.make_request("debug_traceCall", [
        {"from": acct.address, "to": contract, "data": "0x" + word(3).hex()}, "latest",
        {"tracer": "callTracer", "stateOverrides": {acct.address: {"balance": hex(10**18)}}}])
    assert r["result"]["type"] == "CALL" and "error" not in r["result"], r
    bad_tracer = w3.provider.make_request("debug_traceTransaction", [ok["transactionHash"].to_0x_hex(), {"tracer": "nope"}])
    assert "error" in bad_tracer and "tracer" in bad_tracer["error"]["message"], bad_tracer


def test_call_overrides_apply_or_are_refused(w3, acct):
    probe = Web3.to_checksum_address("0x" + "ab" * 20)
    slot = w3.eth.call({"to": probe}, "latest", {probe: {"code": _RETURN_SLOT0, "stateDiff": {"0x" + "00" * 32: "0x" + "00" * 31 + "07"}}})
    assert int.from_bytes(slot, "big") == 7
    bal = w3.eth.call({"to": probe}, "latest", {probe: {"code": _RETURN_BALANCE, "balance": hex(123)}})
    assert int.from_bytes(bal, "big") == 123
    r = w3.provider.make_request("eth_call", [{"to": probe}, "latest", {probe: {"code": _RETURN_NUMBER}}, {"number": hex(999)}])
    assert int(r["result"], 16) == 999, r
    est = w3.provider.make_request("eth_estimateGas", [{"to": probe, "from": acct.address}, "latest", {probe: {"code": _RETURN_NUMBER}}])
    assert int(est["result"], 16) > 21000, est
    for bad, why in [
        ({probe: {"movePrecompileToAddress": probe}}, "movePrecompileToAddress"),
        ({probe: {"codee": "0x00"}}, "codee"),
        ({probe: {"state": {}, "stateDiff": {}}}, "both"),
    ]:
        r = w3.provider.make_request("eth_call", [{"to": probe}, "latest", bad])
        assert r["error"]["code"] == -32602 and why in r["error"]["message"], r
    r = w3.provider.make_request("eth_call", [{"to": probe}, "latest", {}, {"blobBaseFee": "0x1"}])
    assert r["error"]["code"] == -32602 and "blobBaseFee" in r["error"]["message"], r
    with pytest.raises(ContractLogicError):
        w3.eth.call({"to": probe, "data": "0x"}, "latest", {probe: {"code": "0x60006000fd"}})


def test_blocks_receipts_positions_peers_and_fees(w3, acct, contract):
    r = send(w3, acct, contract, word(4))
    n = r["blockNumber"]
    receipts = w3.eth.get_block_receipts(n)
    assert r["transactionHash"] in [x["transactionHash"] for x in receipts]
    i = r["transactionIndex"]
    by_pos = w3.eth.get_transaction_by_block(n, i)
    assert by_pos["hash"] == r["transactionHash"]
    assert w3.eth.get_transaction_by_block(r["blockHash"], i)["hash"] == r["transactionHash"]
    assert w3.eth.get_block_transaction_count(n) == len(receipts)
    assert w3.eth.get_block_receipts(r["blockHash"]) == receipts
    assert w3.net.peer_count == 3
    assert w3.eth.blob_base_fee == 1
    lst = w3.eth.create_access_list({"from": acct.address, "to": contract, "data": "0x" + word(3).hex()})
    assert lst["gasUsed"] > 21000 and lst["accessList"] == []
    r = w3.provider.make_request("eth_newPendingTransactionFilter", [])
    assert "not supported" in r["error"]["message"], r
