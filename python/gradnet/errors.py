"""The errors the SDK raises: each names what went wrong and what to fix."""

from __future__ import annotations

from typing import Optional


class GradnetError(Exception):
    """Base class of every error this package raises."""


class ApiError(GradnetError):
    """A node answered with an error: its HTTP status, code and message
    (``{"error": {"code", "message"}}``)."""

    def __init__(self, status: int, code: str, message: str, url: str = "",
                 payment_required: Optional[str] = None):
        super().__init__(f"{status} {code}: {message}" + (f" ({url})" if url else ""))
        self.status = status
        self.code = code
        self.message = message
        self.url = url
        #: a 402's ``PAYMENT-REQUIRED`` header: the terms to pay by
        self.payment_required = payment_required


class Unreachable(GradnetError):
    """The node could not be reached (connection refused, timed out, …)."""


class VerificationError(GradnetError):
    """An answer, receipt or certificate does not hold: the message says which
    check failed."""


class PaymentError(GradnetError):
    """A paid call could not be paid within the limits this client was given."""
