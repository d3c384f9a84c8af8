"""gradnet's Python SDK: the model hub, inference with receipts checked on
arrival, LLMs through the ``openai`` client, the chain through web3.py, and
offline verification of receipts and certificates.

>>> import gradnet, numpy as np
>>> node = gradnet.Node("http://127.0.0.1:7800", key="0x…")
>>> r = node.infer("demo@1.00/mlp.onnx", {"x": np.ones((1, 4), np.float32)})
>>> r["y"], r.receipt.node
"""

from .chain import Chain, ModelOutput
from .errors import ApiError, GradnetError, PaymentError, Unreachable, VerificationError
from .llm import LLM, Answer
from .node import InferenceResult, Node
from .payments import Payer, parse_amount
from .receipts import Certificate, Receipt, Verified, verify, verify_file

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "ApiError",
    "Certificate",
    "Chain",
    "GradnetError",
    "InferenceResult",
    "LLM",
    "ModelOutput",
    "Node",
    "Payer",
    "PaymentError",
    "Receipt",
    "Unreachable",
    "VerificationError",
    "Verified",
    "parse_amount",
    "verify",
    "verify_file",
]
