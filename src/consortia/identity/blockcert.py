"""Commit certificates: does a set of block signatures meet the channel's block-signing policy?

Used by nodes (for blocks fetched by sync) and by light clients (the SDK), with nothing but
the channel configuration.
"""

from __future__ import annotations

from consortia.crypto import suite_by_name
from consortia.identity.msp import MSP, IdentityError
from consortia.identity.policy import satisfies
from consortia.types import ChannelConfig, CommitCertificate, Header, commit_signing_bytes


class VerificationError(Exception):
    """A block, certificate or proof does not check out against the channel's configuration."""


def verify_certificate(config: ChannelConfig, header: Header, cert: CommitCertificate | None) -> list[str]:
    """Check `cert` commits `header` under the block-signing policy; returns the signing orgs.

    Raises VerificationError when it does not.
    """
    if cert is None:
        raise VerificationError(f"block {header.height} carries no commit certificate")
    if cert.block_hash != header.hash or cert.height != header.height:
        raise VerificationError("commit certificate is for a different block")
    msp = MSP(config)
    callers = []
    message = commit_signing_bytes(header.hash)
    validators = {v.cert for v in config.consensus.validators}
    signers = [s.signer for s in cert.signatures]
    if len(set(signers)) != len(signers):
        raise VerificationError("a node signed the block twice")
    for sig in cert.signatures:
        if validators and sig.signer not in validators:
            raise VerificationError("a block signature is not from one of the channel's validators")
        try:
            ident = msp.validate(sig.signer, header.timestamp_ms)
        except IdentityError as exc:
            raise VerificationError(f"block signer rejected: {exc}") from exc
        if not suite_by_name(ident.suite).verify(ident.public_key, message, sig.signature):
            raise VerificationError("a block signature does not verify")
        callers.append(ident.caller)
    policy = config.policies["block_signing"]
    if not satisfies(policy, config, callers):
        raise VerificationError("block signatures do not meet the channel's block-signing policy")
    return sorted({c.org for c in callers if c.role == policy.role})
