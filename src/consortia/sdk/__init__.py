"""Python SDK for consortia networks."""

from consortia.sdk.client import ApiError, AsyncClient, Client, SignedTx, VerifiedValue, sign_transaction
from consortia.sdk.verify import VerificationError, verify_certificate

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "SignedTx",
    "VerificationError",
    "VerifiedValue",
    "sign_transaction",
    "verify_certificate",
]
