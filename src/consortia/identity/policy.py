"""k-of-n organisation policies ("10 of 15 banks must sign")."""

from __future__ import annotations

from collections.abc import Iterable

from consortia.types import Caller, ChannelConfig, Policy


def policy_orgs(policy: Policy, config: ChannelConfig) -> list[str]:
    """The organisations a policy counts, in config order."""
    members = [org.name for org in config.orgs]
    if not policy.orgs:
        return members
    return [name for name in members if name in policy.orgs]


def required_orgs(policy: Policy, config: ChannelConfig) -> int:
    """How many distinct organisations must sign; k == 0 means a strict majority."""
    n = len(policy_orgs(policy, config))
    if policy.k == 0:
        return n // 2 + 1
    return min(policy.k, n) if n else policy.k


def signing_orgs(policy: Policy, config: ChannelConfig, signers: Iterable[Caller]) -> list[str]:
    """The distinct counted organisations among `signers` holding the policy's role, sorted."""
    allowed = set(policy_orgs(policy, config))
    return sorted({s.org for s in signers if s.org in allowed and s.role == policy.role})


def satisfies(policy: Policy, config: ChannelConfig, signers: Iterable[Caller]) -> bool:
    got = signing_orgs(policy, config, signers)
    return len(got) >= required_orgs(policy, config) and len(got) > 0
