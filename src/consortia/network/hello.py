"""HELLO: after TLS, each side proves which validator it is (sans-IO).

Both sides first send a `Challenge` (a fresh random nonce). Each then answers the other's
challenge with a `Hello`: its node identity certificate and a signature, by the identity
key, over

    HELLO_DOMAIN || canonical([chain_id, channel, sha256(own TLS certificate), challenge])

The receiver checks the signature against the certificate, validates the certificate
with the channel's MSP (issued by an org CA, role node, valid now, not revoked), finds
the validator whose configured certificate is exactly this one, and insists that the
organisation of the identity is the organisation whose TLS CA issued the peer's TLS
certificate. Binding the TLS fingerprint stops a proof being relayed over another TLS
session; the challenge stops it being replayed later. A peer's name therefore comes
only from its authenticated certificate, never from anything it claims.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from consortia.crypto import sha256
from consortia.identity.errors import IdentityError
from consortia.identity.layout import ROLE_NODE
from consortia.identity.msp import MSP
from consortia.network.errors import HelloRefused
from consortia.network.tls import TlsAuthorities
from consortia.types import ChannelConfig, CodecError, Validator, decode, encode

HELLO_DOMAIN = b"consortia/peer-hello/v1\x00"
CHALLENGE_BYTES = 32
SIGNATURE_BYTES_MAX = 512


class Challenge(msgspec.Struct, array_like=True, frozen=True):
    nonce: bytes


class Hello(msgspec.Struct, array_like=True, frozen=True):
    cert: bytes  # the node's identity certificate (DER)
    signature: bytes


def hello_signing_bytes(config: ChannelConfig, tls_fingerprint: bytes, challenge: bytes) -> bytes:
    return HELLO_DOMAIN + encode([config.chain_id, config.channel, tls_fingerprint, challenge])


def make_hello(
    config: ChannelConfig,
    cert_der: bytes,
    sign: Callable[[bytes], bytes],
    own_tls_cert_der: bytes,
    challenge: bytes,
) -> Hello:
    """Our answer to the peer's `challenge` (`sign` signs with the identity key)."""
    return Hello(cert_der, sign(hello_signing_bytes(config, sha256(own_tls_cert_der), challenge)))


def decode_challenge(payload: bytes) -> bytes:
    """The nonce of a Challenge frame; raises HelloRefused for a malformed one."""
    try:
        nonce = decode(payload, Challenge).nonce
    except CodecError as exc:
        raise HelloRefused(f"malformed challenge: {exc}") from exc
    if len(nonce) != CHALLENGE_BYTES:
        raise HelloRefused(f"challenge must be {CHALLENGE_BYTES} bytes")
    return nonce


def decode_hello(payload: bytes) -> Hello:
    """Raises HelloRefused for a malformed Hello."""
    try:
        hello = decode(payload, Hello)
    except CodecError as exc:
        raise HelloRefused(f"malformed hello: {exc}") from exc
    if len(hello.signature) > SIGNATURE_BYTES_MAX:
        raise HelloRefused("hello signature too long")
    return hello


class HelloVerifier:
    """Maps a peer's Hello + TLS certificate to the channel validator it proves to be."""

    def __init__(self, config: ChannelConfig, msp: MSP) -> None:
        """Raises BadNetworkConfig for an unparsable TLS CA certificate."""
        self.config = config
        self._msp = msp
        self._authorities = TlsAuthorities(config)
        self._by_cert = {v.cert: v for v in config.consensus.validators}

    def verify(self, hello: Hello, peer_tls_cert_der: bytes, challenge: bytes, now_ms: int) -> Validator:
        """The validator behind `hello`, answered to our `challenge`, at time `now_ms`.

        Raises HelloRefused when the certificate is not a validator's, is invalid, expired
        or revoked, the signature does not verify, or the TLS certificate's organisation
        differs from the identity's.
        """
        # Cheap checks first: a stranger's bytes never reach certificate parsing.
        validator = self._by_cert.get(hello.cert)
        if validator is None:
            raise HelloRefused("the certificate is not a validator of the channel")
        message = hello_signing_bytes(self.config, sha256(peer_tls_cert_der), challenge)
        try:
            identity = self._msp.verify(hello.cert, message, hello.signature, now_ms)
        except IdentityError as exc:
            raise HelloRefused(f"{validator.name}: {exc.code}: {exc}") from exc
        caller = identity.caller
        if caller.role != ROLE_NODE:
            raise HelloRefused(f"{validator.name}: role {caller.role!r} is not {ROLE_NODE!r}")
        if caller.org != validator.org:
            raise HelloRefused(
                f"{validator.name}: identity of {caller.org!r}, configured in {validator.org!r}"
            )
        tls_org = self._authorities.org_of(peer_tls_cert_der)
        if tls_org != caller.org:
            raise HelloRefused(
                f"{validator.name}: TLS certificate of {tls_org!r}, identity of {caller.org!r}"
            )
        return validator
