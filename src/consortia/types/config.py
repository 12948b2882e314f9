"""The channel configuration carried by the genesis block and changed by config transactions."""

from __future__ import annotations

from typing import Annotated

import msgspec

from consortia.crypto.hashing import sha256
from consortia.types.codec import encode

# The largest explicit Ethereum chain id: 2**53 - 1, the largest integer a JavaScript
# number holds exactly (EIP-2294 proposes this bound), so every wallet can handle it.
ETH_CHAIN_ID_MAX = 2**53 - 1
ETH_ADDRESS_BYTES = 20


class OrgConfig(msgspec.Struct, array_like=True, frozen=True):
    name: str
    ca_certs: list[bytes]  # DER certificates of the org's CAs (identities)
    tls_ca_certs: list[bytes]  # DER certificates of the org's TLS CAs
    crls: list[bytes] = []  # DER certificate revocation lists signed by the org's CA


class Policy(msgspec.Struct, array_like=True, frozen=True):
    """`k` distinct organisations out of `orgs` (all orgs when empty), signing in `role`.

    k == 0 means a majority of the listed orgs (more than half), recomputed as orgs join.
    """

    k: int = 0
    orgs: list[str] = []
    role: str = "admin"


class Validator(msgspec.Struct, array_like=True, frozen=True):
    """A consensus node: its name, organisation, identity certificate (DER) and peer address."""

    name: str
    org: str
    cert: bytes
    address: str = ""  # "host:port" of its peer endpoint; names, not IPs, so configs travel


class ConsensusConfig(msgspec.Struct, array_like=True, frozen=True):
    engine: str = "solo"
    params: dict[str, int | str] = {}
    validators: list[Validator] = []  # sorted by name; empty for solo


class BlockLimits(msgspec.Struct, array_like=True, frozen=True):
    """What one block may hold. New fields go at the end, so older encodings still decode.

    The EVM limits bound how long a block's Ethereum transactions can run: a block's
    transactions may use at most `evm_gas_max` gas in total, one transaction at most
    `evm_tx_gas_max` (never more than the block's). Defaults: py-evm burns about 2.4M
    gas per CPU second on a bare jump loop, the slowest work per gas we found (a storage
    loop ~4M/s, ERC-20 transfers ~25M/s; `python -m tests.evm.bench_evm_gas` on the
    2-core reference host), so a block of worst-case EVM work runs in about a second.
    """

    txs_max: int = 2000
    bytes_max: int = 8 * 1024 * 1024
    wait_ms: int = 50
    evm_gas_max: int = 2_500_000
    evm_tx_gas_max: int = 2_500_000


class EvmPermit(msgspec.Struct, array_like=True, frozen=True):
    """An Ethereum account allowed to send transactions, bound to a member organisation."""

    address: Annotated[bytes, msgspec.Meta(min_length=ETH_ADDRESS_BYTES, max_length=ETH_ADDRESS_BYTES)]
    org: str


class ChannelConfig(msgspec.Struct, array_like=True, frozen=True):
    chain_id: str
    channel: str
    suite: str  # signature suite for transactions and blocks
    orgs: list[OrgConfig]
    policies: dict[str, Policy]  # "block_signing", "lifecycle", "admin"
    consensus: ConsensusConfig
    block: BlockLimits = BlockLimits()
    tx_steps_max: int = 1_000_000
    sequence: int = 0  # bumped by every applied config change
    # The channel's EIP-155 chain id; 0 (configs written before it existed) means derived
    # from chain_id and channel (`types.eth.eth_chain_id_of` reads it).
    eth_chain_id: Annotated[int, msgspec.Meta(ge=0, le=ETH_CHAIN_ID_MAX)] = 0
    # Accounts on the EVM allowlist when the channel starts, sorted by address. Genesis
    # writes them to state; afterwards the allowlist in state changes only through
    # evm_permit / evm_revoke config proposals, and this list stays as the genesis record.
    genesis_evm_allowlist: list[EvmPermit] = []

    @property
    def hash(self) -> bytes:
        return sha256(encode(self))

    def org(self, name: str) -> OrgConfig | None:
        for org in self.orgs:
            if org.name == name:
                return org
        return None
