"""Paying a node for its answers: x402 v2 in the ``upto`` scheme, with
EIP-712 cumulative vouchers ``Voucher{payer, payee, cumulative, expiry}`` in
the domain ``{gradnet-escrow, 1, chainId, 0x…FA}`` that the node redeems
from the payer's escrow deposit."""

from __future__ import annotations

import base64
import json
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Optional

from eth_account import Account
from eth_account.messages import encode_typed_data

from .errors import PaymentError

ESCROW = "0x00000000000000000000000000000000000000FA"
PAYMENT_REQUIRED = "payment-required"
PAYMENT_SIGNATURE = "payment-signature"
SCHEME = "upto"


def parse_amount(s: str) -> int:
    """Wei of ``"1.5"`` (tokens, at most 18 decimals) or ``"42wei"``."""
    s = s.strip()
    try:
        if s.endswith("wei"):
            return int(s[:-3].strip())
        d = Decimal(s)
    except (ValueError, InvalidOperation):
        raise ValueError(f"`{s}` is not an amount (tokens with at most 18 decimals, or `Nwei`)") from None
    wei = d * 10**18
    if wei != wei.to_integral_value() or wei < 0 or "e" in s.lower():
        raise ValueError(f"`{s}` is not an amount (tokens with at most 18 decimals, or `Nwei`)")
    return int(wei)


def voucher_typed_data(chain_id: int, payer: str, payee: str, cumulative: int, expiry: int) -> dict:
    """The EIP-712 typed data of a voucher (what a wallet signs)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Voucher": [
                {"name": "payer", "type": "address"},
                {"name": "payee", "type": "address"},
                {"name": "cumulative", "type": "uint256"},
                {"name": "expiry", "type": "uint64"},
            ],
        },
        "primaryType": "Voucher",
        "domain": {"name": "gradnet-escrow", "version": "1", "chainId": chain_id, "verifyingContract": ESCROW},
        "message": {"payer": payer, "payee": payee, "cumulative": cumulative, "expiry": expiry},
    }


class Payer:
    """Answers a node's ``402 Payment Required`` with a voucher: up to what
    the node has charged this account so far plus ``budget`` wei, valid for
    ``ttl_secs``. The same voucher is sent until the node asks for more."""

    def __init__(self, key: str, budget: int, ttl_secs: int = 3600):
        self._acct = Account.from_key(key)
        self.budget = budget
        self.ttl_secs = ttl_secs
        self._lock = threading.Lock()
        self._current: Optional[str] = None

    @property
    def account(self) -> str:
        return self._acct.address

    @property
    def current(self) -> Optional[str]:
        """The ``PAYMENT-SIGNATURE`` header value last signed."""
        with self._lock:
            return self._current

    def sign(self, chain_id: int, payee: str, cumulative: int, expiry: int) -> str:
        """A ``PAYMENT-SIGNATURE`` header value for this voucher."""
        data = voucher_typed_data(chain_id, self.account, payee, cumulative, expiry)
        sig = self._acct.sign_message(encode_typed_data(full_message=data)).signature
        payload = {
            "x402Version": 2,
            "accepted": {"scheme": SCHEME, "network": f"eip155:{chain_id}",
                         "asset": "0x0000000000000000000000000000000000000000", "payTo": payee},
            "payload": {
                "voucher": {"payer": self.account, "payee": payee, "cumulative": str(cumulative), "expiry": expiry},
                "signature": "0x" + bytes(sig).hex(),
            },
        }
        return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()

    def answer(self, required: str) -> str:
        """The voucher that answers a ``PAYMENT-REQUIRED`` header."""
        try:
            v = json.loads(base64.b64decode(required.strip()))
            a = v["accepts"][0]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise PaymentError(f"the node's PAYMENT-REQUIRED header: {e}") from None
        if a.get("scheme") != SCHEME:
            raise PaymentError(f"the node's PAYMENT-REQUIRED header: scheme {a.get('scheme')} (this client pays `{SCHEME}`)")
        network = str(a.get("network", ""))
        if not network.startswith("eip155:") or not network[7:].isdigit():
            raise PaymentError("the node's PAYMENT-REQUIRED header: no eip155 network")
        payee = a.get("payTo")
        if not isinstance(payee, str):
            raise PaymentError("the node's PAYMENT-REQUIRED header: no payTo")
        extra = a.get("extra") or {}

        def amount(k: str) -> int:
            try:
                return int(extra.get(k, "0"))
            except (TypeError, ValueError):
                return 0

        cumulative = max(amount("minCumulative"), amount("charged") + self.budget)
        header = self.sign(int(network[7:]), payee, cumulative, int(time.time()) + self.ttl_secs)
        with self._lock:
            self._current = header
        return header
