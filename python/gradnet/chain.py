"""The chain through web3.py: models called in a block through the
inference precompile (OpenGradient's ABI at ``0x…F4``), simulated calls,
and workflows (the scheduler at ``0x…F6``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from .errors import GradnetError
from .tensors import MODE_CODES, TensorLike

#: OpenGradient's inference precompile.
PRECOMPILE = to_checksum_address("0x00000000000000000000000000000000000000f4")
#: The inference node registry (stakes, prices, receipts).
REGISTRY = to_checksum_address("0x00000000000000000000000000000000000000f5")
#: The workflow scheduler.
SCHEDULER = to_checksum_address("0x00000000000000000000000000000000000000f6")
#: The escrow that pays nodes for off-chain answers.
ESCROW = to_checksum_address("0x00000000000000000000000000000000000000fa")
#: OpenGradient's inference hub (`run`, `runLLMChat`, `runLLMCompletion`),
#: where its SDK expects it; the devnet predeploys it.
OG_HUB = to_checksum_address("0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE")
#: The devnet's demo contract: forwards a precompile call in a transaction
#: and logs its result.
DEMO_CONTRACT = to_checksum_address("0x0000000000000000000000000000000000000de0")

_NUMBER_TENSOR = "(string,(int128,int128)[],uint32[])"
_STRING_TENSOR = "(string,string[])"
_MODEL_INPUT = f"({_NUMBER_TENSOR}[],{_STRING_TENSOR}[])"
MODEL_OUTPUT = f"({_NUMBER_TENSOR}[],{_STRING_TENSOR}[],(string,string)[],bool)"
_TOOL_CALL = "(string,string,string)"
_MESSAGE = f"(string,string,string,string,{_TOOL_CALL}[])"
_CHAT_REQUEST = f"(uint8,string,{_MESSAGE}[],(string,string,string)[],string,uint32,string[],uint32)"
_COMPLETION_REQUEST = "(uint8,string,string,uint32,string[],uint32)"
_TASK = "(address,address,uint256,uint256,uint256,uint256,uint64)"


def _selector(sig: str) -> bytes:
    return function_signature_to_4byte_selector(sig)


def mode_code(mode: str, quorum: Optional[int] = None) -> int:
    """The ABI's ``uint8 mode``: 0 VANILLA, 1 ZKML, 2 TEE, 3 QUORUM (``3 | n << 4`` asks n nodes)."""
    code = MODE_CODES[mode.upper()]
    if quorum is not None:
        if code != 3 or not 1 <= quorum <= 15:
            raise ValueError("quorum applies to QUORUM mode, 1..15 nodes")
        code |= quorum << 4
    return code


def _fixed(x: Any) -> tuple[int, int]:
    """(value, decimals) of a number: its shortest decimal that reads back the same."""
    if isinstance(x, (bool, np.bool_)):
        return (int(x), 0)
    if isinstance(x, (int, np.integer)):
        return (int(x), 0)
    if isinstance(x, np.float32):
        text = np.format_float_positional(x, unique=True, trim="-")
    else:
        text = repr(float(x))
    if not np.isfinite(float(x)):
        raise ValueError(f"{x} has no fixed-point form")
    q = Fraction(text)
    decimals = 0
    while q.denominator != 1:
        q *= 10
        decimals += 1
    return (int(q), decimals)


def model_input(inputs: Mapping[str, TensorLike]) -> tuple:
    """OpenGradient's ``ModelInput`` for named tensors (numbers as
    ``Number{value, decimals}``, strings as string tensors)."""
    numbers, strings = [], []
    for name, t in inputs.items():
        a = np.asarray(t)
        if a.dtype.kind in "USO":
            strings.append((name, [str(s) for s in a.reshape(-1)]))
        else:
            numbers.append((name, [_fixed(v) for v in a.reshape(-1)], list(a.shape)))
    return (numbers, strings)


@dataclass
class ModelOutput:
    """A precompile answer: numeric tensors (exact decimals as float64, or
    int64 where every value is whole), string tensors, JSON values, and
    whether it was a simulation (``eth_call``) rather than a verified run."""

    numbers: dict[str, np.ndarray]
    strings: dict[str, list[str]]
    jsons: dict[str, str]
    is_simulation_result: bool

    @classmethod
    def decode(cls, data: bytes) -> "ModelOutput":
        (numbers, strings, jsons, sim), = abi_decode([MODEL_OUTPUT], data)
        out: dict[str, np.ndarray] = {}
        for name, values, shape in numbers:
            if all(d <= 0 for _, d in values):
                arr = np.array([v * 10 ** (-d) for v, d in values], dtype=np.int64)
            else:
                arr = np.array([float(Fraction(v) / Fraction(10) ** d) for v, d in values], dtype=np.float64)
            out[name] = arr.reshape([int(s) for s in shape]) if shape else arr
        return cls(out, {n: list(v) for n, v in strings}, {n: v for n, v in jsons}, bool(sim))


@dataclass
class ChainInference:
    """A model run in a block: its output, the transaction and its block."""

    output: Any
    tx_hash: str
    block: int
    receipt: Any


class Chain:
    """A gradnet chain at ``rpc_url`` (any validator's JSON-RPC), with
    ``key`` to send transactions."""

    def __init__(self, rpc_url: str, key: Optional[str] = None, timeout: float = 120.0):
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.account = Account.from_key(key) if key else None
        self.timeout = timeout
        self.workflows = Workflows(self)
        self.escrow = Escrow(self)

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def send(self, to: Optional[str], data: bytes = b"", value: int = 0, gas: Optional[int] = None) -> Any:
        """Signs and sends a transaction (EIP-1559; ``to=None`` deploys
        ``data``), waits for its receipt; raises :class:`GradnetError`
        naming the revert reason if it failed."""
        if self.account is None:
            raise GradnetError("sending a transaction needs a key (Chain(url, key=…))")
        tx: dict[str, Any] = {
            "from": self.account.address,
            "to": to,
            "data": data,
            "value": value,
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
        }
        if to is None:
            del tx["to"]
        if gas is None:
            try:
                gas = int(self.w3.eth.estimate_gas(tx) * 1.3) + 50_000
            except (ContractLogicError, Web3RPCError) as e:
                raise GradnetError(f"the transaction would revert: {e}") from None
        tx["gas"] = gas
        base = self.w3.eth.get_block("latest")["baseFeePerGas"]
        tip = self.w3.eth.max_priority_fee
        tx.update(maxFeePerGas=2 * base + tip, maxPriorityFeePerGas=tip)
        del tx["from"]
        for attempt in range(5):
            signed = self.account.sign_transaction(tx)
            try:
                h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                break
            except Web3RPCError as e:
                # another sender of this account took the nonce: take the next
                if attempt == 4 or not any(m in str(e) for m in ("nonce too low", "underpriced", "already known")):
                    raise GradnetError(f"sending the transaction: {e}") from None
                time.sleep(0.2)
                tx["nonce"] = self.w3.eth.get_transaction_count(self.account.address, "pending")
        r = self.w3.eth.wait_for_transaction_receipt(h, timeout=self.timeout)
        if r["status"] != 1:
            raise GradnetError(f"transaction {h.hex()} reverted: {self._reason(tx, r)}")
        return r

    def _reason(self, tx: dict, r: Any) -> str:
        try:
            call = {k: tx[k] for k in ("to", "data", "value") if k in tx}
            call["from"] = self.account.address  # type: ignore[union-attr]
            self.w3.eth.call(call, r["blockNumber"] - 1)
        except Exception as e:  # noqa: BLE001  (the node's message is the reason)
            return str(e)
        return "unknown (the call succeeds when replayed)"

    # ---- ML models ------------------------------------------------------------

    @staticmethod
    def inference_calldata(model: str, inputs: Mapping[str, TensorLike], mode: str = "VANILLA",
                           quorum: Optional[int] = None) -> bytes:
        """``runModelInference((mode, modelCID, input))`` calldata."""
        req = (mode_code(mode, quorum), model, model_input(inputs))
        sig = f"runModelInference((uint8,string,{_MODEL_INPUT}))"
        return _selector(sig.replace(" ", "")) + abi_encode([f"(uint8,string,{_MODEL_INPUT})"], [req])

    def infer(self, model: str, inputs: Mapping[str, TensorLike], mode: str = "VANILLA",
              quorum: Optional[int] = None, via: str = DEMO_CONTRACT) -> ChainInference:
        """Runs a model in a block: a transaction to ``via`` (a contract that
        forwards the call to the precompile and logs the result, as the
        devnet's demo contract does) carries the call; validators check the
        result (signatures, quorum, proof or enclave) before the block is
        final. The output is read from the transaction's log."""
        data = self.inference_calldata(model, inputs, mode, quorum)
        r = self.send(via, data)
        return ChainInference(ModelOutput.decode(self._logged(r, via)), r["transactionHash"].hex(), r["blockNumber"], r)

    def simulate(self, model: str, inputs: Mapping[str, TensorLike], mode: str = "VANILLA") -> ModelOutput:
        """``eth_call`` to the precompile: the node runs the model itself
        (``is_simulation_result`` is true); nothing is verified or paid."""
        data = self.inference_calldata(model, inputs, mode)
        return ModelOutput.decode(bytes(self.w3.eth.call({"to": PRECOMPILE, "data": data})))

    @staticmethod
    def _logged(r: Any, via: str) -> bytes:
        # the demo contract logs the result without a topic; OpenGradient's
        # hub with its event's (InferenceResult, LLMChatResult, …)
        for log in r["logs"]:
            if log["address"].lower() == via.lower() and len(log["topics"]) <= 1:
                return bytes(log["data"])
        raise GradnetError(f"transaction {r['transactionHash'].hex()} logged no result from {via}")

    # ---- LLMs -----------------------------------------------------------------

    def chat(self, model: str, messages: Sequence[Mapping[str, str]], mode: str = "VANILLA",
             max_tokens: int = 100, stop: Sequence[str] = (), temperature: float = 0.0,
             via: str = DEMO_CONTRACT) -> ChainInference:
        """``runLLMChat`` in a block; the output is ``{finish_reason, role, content}``."""
        msgs = [(m["role"], m.get("content", ""), m.get("name", ""), m.get("tool_call_id", ""), []) for m in messages]
        req = (_llm_mode(mode), model, msgs, [], "", max_tokens, list(stop), round(temperature * 100))
        data = _selector(f"runLLMChat({_CHAT_REQUEST})") + abi_encode([_CHAT_REQUEST], [req])
        r = self.send(via, data)
        (reason, (role, content, _, _, _)), = abi_decode([f"(string,{_MESSAGE})"], self._logged(r, via))
        out = {"finish_reason": reason, "role": role, "content": content}
        return ChainInference(out, r["transactionHash"].hex(), r["blockNumber"], r)

    def complete(self, model: str, prompt: str, mode: str = "VANILLA", max_tokens: int = 100,
                 stop: Sequence[str] = (), temperature: float = 0.0, via: str = DEMO_CONTRACT) -> ChainInference:
        """``runLLMCompletion`` in a block; the output is the answer's text."""
        req = (_llm_mode(mode), model, prompt, max_tokens, list(stop), round(temperature * 100))
        data = _selector(f"runLLMCompletion({_COMPLETION_REQUEST})") + abi_encode([_COMPLETION_REQUEST], [req])
        r = self.send(via, data)
        (answer,), = abi_decode(["(string)"], self._logged(r, via))
        return ChainInference(answer, r["transactionHash"].hex(), r["blockNumber"], r)


def _llm_mode(mode: str) -> int:
    """LLM calls number modes as OpenGradient's LLM enum: 0 VANILLA, 1 TEE; 3 QUORUM."""
    if mode.upper() == "TEE":
        return 1
    if mode.upper() == "ZKML":
        raise ValueError("ZKML proves ONNX models only; LLM calls use VANILLA, TEE or QUORUM")
    return mode_code(mode)


@dataclass
class Task:
    """A workflow task: the contract whose ``run()`` the scheduler calls
    (a cancelled task reads with ``end_time`` 0, its deposit refunded)."""

    contract: str
    owner: str
    end_time: int
    frequency: int
    next_run: int
    deposit: int
    runs: int


class Workflows:
    """Scheduled runs: every ``frequency`` seconds until ``end_time``, the
    scheduler calls the contract's ``run()`` at the start of a block, paying
    its inference fees from the task's deposit."""

    def __init__(self, chain: Chain):
        self.chain = chain

    def register(self, contract: str, end_time: int, frequency: int, deposit: int) -> Any:
        data = _selector("registerTask(address,uint256,uint256)") + abi_encode(
            ["address", "uint256", "uint256"], [contract, end_time, frequency])
        return self.chain.send(SCHEDULER, data, value=deposit)

    def fund(self, contract: str, amount: int) -> Any:
        return self.chain.send(SCHEDULER, _selector("fundTask(address)") + abi_encode(["address"], [contract]),
                               value=amount)

    def cancel(self, contract: str) -> Any:
        return self.chain.send(SCHEDULER, _selector("cancelTask(address)") + abi_encode(["address"], [contract]))

    def get(self, contract: str) -> Optional[Task]:
        data = _selector("getTask(address)") + abi_encode(["address"], [contract])
        try:
            raw = bytes(self.chain.w3.eth.call({"to": SCHEDULER, "data": data}))
        except ContractLogicError as e:
            if "no task" in str(e):
                return None
            raise
        (t,) = abi_decode([_TASK], raw)
        if int(t[1], 16) == 0:
            return None
        return Task(to_checksum_address(t[0]), to_checksum_address(t[1]), *t[2:])


@dataclass
class Channel:
    """A payer's deposit to one payee: what was deposited, what the payee
    redeemed, and when a withdrawal can finish (0: none announced)."""

    deposited: int
    redeemed: int
    withdrawable_at: int


class Escrow:
    """Deposits that pay a node's operator for off-chain answers (the node
    redeems the vouchers a :class:`~gradnet.Payer` signs)."""

    def __init__(self, chain: Chain):
        self.chain = chain

    def deposit(self, payee: str, amount: int) -> Any:
        """Deposits ``amount`` wei that only ``payee`` can draw on."""
        data = _selector("deposit(address)") + abi_encode(["address"], [payee])
        return self.chain.send(ESCROW, data, value=amount)

    def start_withdrawal(self, payee: str) -> Any:
        return self.chain.send(ESCROW, _selector("startWithdrawal(address)") + abi_encode(["address"], [payee]))

    def withdraw(self, payee: str) -> Any:
        return self.chain.send(ESCROW, _selector("withdraw(address)") + abi_encode(["address"], [payee]))

    def channel(self, payer: str, payee: str) -> Channel:
        data = _selector("channel(address,address)") + abi_encode(["address", "address"], [payer, payee])
        raw = bytes(self.chain.w3.eth.call({"to": ESCROW, "data": data}))
        (c,) = abi_decode(["(uint256,uint256,uint64)"], raw)
        return Channel(*c)
