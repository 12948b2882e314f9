"""Build a channel's genesis configuration from a crypto directory."""

from __future__ import annotations

from pathlib import Path

from consortia.crypto import SUITES, InvalidKey, public_key_of
from consortia.identity import layout
from consortia.identity.certs import cert_der, load_certificate
from consortia.identity.crl import load_crl_der
from consortia.identity.errors import BadArgument, BadCertificate, WrongSuite
from consortia.identity.ethkeys import org_eth_accounts
from consortia.types import ChannelConfig, ConsensusConfig, EvmPermit, OrgConfig, Policy
from consortia.types.eth import BadEthChainId, check_eth_chain_id
from consortia.types.eth import eth_chain_id as derived_eth_chain_id

SOLO_ENGINE = "solo"


def default_policies(engine: str) -> dict[str, Policy]:
    """One node signs blocks under solo; a majority of orgs' nodes under any other engine."""
    return {
        "block_signing": Policy(k=1, role=layout.ROLE_NODE)
        if engine == SOLO_ENGINE
        else Policy(k=0, role=layout.ROLE_NODE),
        "lifecycle": Policy(k=0, role=layout.ROLE_ADMIN),
        "admin": Policy(k=0, role=layout.ROLE_ADMIN),
    }


def org_config(crypto_dir: Path, org: str) -> OrgConfig:
    """The org's CA, TLS CA and CRL, as DER. Raises IdentityNotFound, BadCertificate, BadCrl."""
    layout.require_org(crypto_dir, org)
    ca = cert_der(load_certificate(layout.read_bytes(layout.ca_cert_path(crypto_dir, org))))
    tlsca = cert_der(load_certificate(layout.read_bytes(layout.tlsca_cert_path(crypto_dir, org))))
    crl = load_crl_der(layout.crl_path(crypto_dir, org))
    return OrgConfig(org, [ca], [tlsca], [crl])


def genesis_evm_allowlist(crypto_dir: Path, orgs: list[str]) -> list[EvmPermit]:
    """Every Ethereum account of the orgs' users (their eth.address files), bound to its
    org and sorted by address. Raises IdentityNotFound, BadKey, and BadArgument when two
    identities share an address."""
    permits: dict[bytes, EvmPermit] = {}
    for org in orgs:
        for name, address in org_eth_accounts(crypto_dir, org):
            if address in permits:
                raise BadArgument(f"{name} has the Ethereum address 0x{address.hex()} of another identity")
            permits[address] = EvmPermit(address, org)
    return [permits[address] for address in sorted(permits)]


def channel_config_from_crypto(
    crypto_dir: Path,
    orgs: list[str],
    chain_id: str,
    channel: str,
    suite: str = "ed25519",
    engine: str = SOLO_ENGINE,
    params: dict[str, int | str] | None = None,
    eth_chain_id: int | None = None,
) -> ChannelConfig:
    """A genesis ChannelConfig for `orgs` (in that order) with the default policies.

    The config's Ethereum chain id is `eth_chain_id`, or when None the id derived
    from `chain_id` and `channel` (`types.eth.eth_chain_id`); it is written explicitly
    either way. Every Ethereum account of the orgs' client identities goes on the genesis
    EVM allowlist (`genesis_evm_allowlist`).

    Raises BadOrgName, BadArgument (unknown suite, empty ids, an Ethereum chain id outside
    1..2**53 - 1, an address shared by two identities), IdentityNotFound, BadCertificate,
    BadCrl, BadKey (a malformed eth.address), and WrongSuite when an org's CA key is not of
    `suite` (cryptogen gives every identity its CA's suite, so a mismatch means no identity
    of that org could ever transact).
    """
    layout.check_org_names(orgs)
    if suite not in SUITES:
        raise BadArgument(f"unknown suite {suite!r}; known: {', '.join(sorted(SUITES))}")
    if not chain_id or not channel:
        raise BadArgument("chain id and channel name must not be empty")
    if eth_chain_id is None:
        eth_chain_id = derived_eth_chain_id(chain_id, channel)
    try:
        check_eth_chain_id(eth_chain_id)
    except BadEthChainId as exc:
        raise BadArgument(str(exc)) from exc
    org_configs = [org_config(crypto_dir, org) for org in orgs]
    for config in org_configs:
        try:
            ca_suite = public_key_of(load_certificate(config.ca_certs[0]).public_key())[0]
        except InvalidKey as exc:
            raise BadCertificate(f"CA of {config.name!r}: {exc}") from exc
        if ca_suite != suite:
            raise WrongSuite(f"CA of {config.name!r} uses {ca_suite}, the channel uses {suite}")
    return ChannelConfig(
        chain_id=chain_id,
        channel=channel,
        suite=suite,
        orgs=org_configs,
        policies=default_policies(engine),
        consensus=ConsensusConfig(engine=engine, params=dict(params or {})),
        eth_chain_id=eth_chain_id,
        genesis_evm_allowlist=genesis_evm_allowlist(crypto_dir, orgs),
    )
