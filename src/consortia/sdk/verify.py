"""Light-client checks the SDK runs locally."""

from consortia.identity.blockcert import VerificationError, verify_certificate

__all__ = ["VerificationError", "verify_certificate"]
