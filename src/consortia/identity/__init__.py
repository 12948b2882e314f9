"""Organisations, X.509 identities, roles, revocation and k-of-n policies (the MSP)."""

from consortia.identity.check import CertStatus, list_certificates
from consortia.identity.crl import load_crl_der, revoke
from consortia.identity.cryptogen import ConsortiumLayout, OrgLayout, add_identity, generate_consortium
from consortia.identity.errors import (
    BadArgument,
    BadCertificate,
    BadConfig,
    BadCrl,
    BadKey,
    BadOrgName,
    BadRole,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    ConsortiumExists,
    IdentityError,
    IdentityNotFound,
    UnknownIssuer,
    WrongSuite,
)
from consortia.identity.genesis import channel_config_from_crypto, default_policies, genesis_evm_allowlist
from consortia.identity.layout import ROLE_ADMIN, ROLE_CLIENT, ROLE_NODE, ROLES
from consortia.identity.msp import MSP, BadSignature, Identity
from consortia.identity.policy import policy_orgs, required_orgs, satisfies, signing_orgs
from consortia.identity.wallet import (
    NodeIdentity,
    SigningIdentity,
    load_node_identity,
    load_signing_identity,
    private_key_from_pem,
    private_key_to_pem,
)

__all__ = [
    "MSP",
    "ROLES",
    "ROLE_ADMIN",
    "ROLE_CLIENT",
    "ROLE_NODE",
    "BadArgument",
    "BadCertificate",
    "BadConfig",
    "BadCrl",
    "BadKey",
    "BadOrgName",
    "BadRole",
    "BadSignature",
    "CertStatus",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "ConsortiumExists",
    "ConsortiumLayout",
    "Identity",
    "IdentityError",
    "IdentityNotFound",
    "NodeIdentity",
    "OrgLayout",
    "SigningIdentity",
    "UnknownIssuer",
    "WrongSuite",
    "add_identity",
    "channel_config_from_crypto",
    "default_policies",
    "generate_consortium",
    "genesis_evm_allowlist",
    "list_certificates",
    "load_crl_der",
    "load_node_identity",
    "load_signing_identity",
    "policy_orgs",
    "private_key_from_pem",
    "private_key_to_pem",
    "required_orgs",
    "revoke",
    "satisfies",
    "signing_orgs",
]
