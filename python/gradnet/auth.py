"""Signed requests: a node accepts a write (a hub change, a session) when it
carries an EIP-712 signature by an Ethereum account over the method, the path
with its query, the keccak256 of the body, the node's chain id, a timestamp
and a fresh random nonce — the typed data ``Request`` in the domain
``{name: "gradnet", version: "1", chainId}``."""

from __future__ import annotations

import os
import time
from typing import Optional

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

ACCOUNT_HEADER = "x-gradnet-account"
SIGNATURE_HEADER = "x-gradnet-signature"
TIMESTAMP_HEADER = "x-gradnet-timestamp"
NONCE_HEADER = "x-gradnet-nonce"
BODY_HASH_HEADER = "x-gradnet-body-hash"

_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
    ],
    "Request": [
        {"name": "method", "type": "string"},
        {"name": "path", "type": "string"},
        {"name": "bodyHash", "type": "bytes32"},
        {"name": "timestamp", "type": "uint64"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def typed_data(chain_id: int, method: str, path: str, body_hash: bytes, timestamp: int, nonce: bytes) -> dict:
    """The EIP-712 typed data a request's signature covers (what a wallet
    signs with ``eth_signTypedData_v4``)."""
    return {
        "types": _TYPES,
        "primaryType": "Request",
        "domain": {"name": "gradnet", "version": "1", "chainId": chain_id},
        "message": {
            "method": method.upper(),
            "path": path,
            "bodyHash": body_hash,
            "timestamp": timestamp,
            "nonce": nonce,
        },
    }


def sign_request(
    key: str,
    chain_id: int,
    method: str,
    path: str,
    body_hash: bytes,
    timestamp: Optional[int] = None,
    nonce: Optional[bytes] = None,
) -> dict[str, str]:
    """The four ``x-gradnet-*`` headers that sign ``method path`` for the
    account of ``key`` (a 0x-prefixed secp256k1 private key)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = os.urandom(32) if nonce is None else nonce
    acct = Account.from_key(key)
    msg = encode_typed_data(full_message=typed_data(chain_id, method, path, body_hash, timestamp, nonce))
    sig = acct.sign_message(msg).signature
    return {
        ACCOUNT_HEADER: acct.address,
        SIGNATURE_HEADER: "0x" + bytes(sig).hex(),
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: "0x" + nonce.hex(),
    }


def body_hash(body: bytes) -> bytes:
    """keccak256 of a request body (for an upload, of the file's bytes)."""
    return keccak(body)
