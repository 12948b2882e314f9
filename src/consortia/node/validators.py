"""The channel's validator set as consensus peers."""

from __future__ import annotations

from cryptography import x509

from consortia.consensus import Peer
from consortia.crypto import public_key_of
from consortia.types import ChannelConfig


def validator_peers(config: ChannelConfig) -> list[Peer]:
    """Validators from the config, sorted by name. Raises ValueError for a malformed certificate.

    Membership is decided by the config (which admins approved); each block signature is
    checked against the block's timestamp by whoever verifies the certificate.
    """
    peers = []
    for v in sorted(config.consensus.validators, key=lambda v: v.name):
        suite, public_key = public_key_of(x509.load_der_x509_certificate(v.cert).public_key())
        peers.append(Peer(v.name, v.org, v.cert, suite, public_key))
    return peers
