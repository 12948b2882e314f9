"""Typed identity errors, each with a machine-readable `code` for receipts and API answers."""

from __future__ import annotations


class IdentityError(Exception):
    """Base of every error the identity package raises for bad input or material."""

    code = "identity_error"


class BadCertificate(IdentityError):
    """The bytes are not a well-formed certificate of the shape we issue."""

    code = "bad_certificate"


class UnknownIssuer(IdentityError):
    """No CA of the channel issued the certificate (or its signature does not verify)."""

    code = "unknown_issuer"


class CertificateNotYetValid(IdentityError):
    code = "certificate_not_yet_valid"


class CertificateExpired(IdentityError):
    code = "certificate_expired"


class CertificateRevoked(IdentityError):
    code = "certificate_revoked"


class BadRole(IdentityError):
    """The certificate carries no known role, or not the role this use requires."""

    code = "bad_role"


class WrongSuite(IdentityError):
    """The certificate's key is not of the channel's signature suite."""

    code = "wrong_suite"


class BadConfig(IdentityError):
    """The channel configuration's CA certificates or CRLs are unusable."""

    code = "bad_config"


class BadCrl(IdentityError):
    """A CRL file is malformed or not signed by its organisation's CA."""

    code = "bad_crl"


class BadKey(IdentityError):
    """A private key file is malformed or of an unsupported type."""

    code = "bad_key"


class BadOrgName(IdentityError):
    code = "bad_org_name"


class BadArgument(IdentityError):
    code = "bad_argument"


class ConsortiumExists(IdentityError):
    """Generating would overwrite existing crypto material."""

    code = "consortium_exists"


class IdentityNotFound(IdentityError):
    """An organisation or identity is missing from a crypto directory."""

    code = "identity_not_found"
