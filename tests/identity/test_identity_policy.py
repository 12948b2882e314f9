"""k-of-n organisation policies: explicit k, majority (k == 0), org subsets and roles."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consortia.identity import policy_orgs, required_orgs, satisfies, signing_orgs
from consortia.types import Caller, ChannelConfig, ConsensusConfig, OrgConfig, Policy


def _config(n: int) -> ChannelConfig:
    orgs = [OrgConfig(f"org{i}", [], []) for i in range(1, n + 1)]
    return ChannelConfig("c", "ch", "ed25519", orgs, {}, ConsensusConfig())


def _caller(org: str, role: str = "admin", subject: str = "") -> Caller:
    return Caller(org, role, subject or f"{role}@{org}", b"\x00" * 32)


def test_ten_of_fifteen() -> None:
    config, policy = _config(15), Policy(k=10, role="admin")
    signers = [_caller(f"org{i}") for i in range(1, 10)]
    assert not satisfies(policy, config, signers)
    assert satisfies(policy, config, [*signers, _caller("org10")])


def test_majority_is_more_than_half() -> None:
    assert [required_orgs(Policy(k=0), _config(n)) for n in (1, 2, 3, 4, 5, 15)] == [1, 2, 2, 3, 3, 8]
    config = _config(4)
    assert not satisfies(Policy(), config, [_caller("org1"), _caller("org2")])
    assert satisfies(Policy(), config, [_caller("org1"), _caller("org2"), _caller("org4")])


def test_one_org_counts_once_however_many_sign() -> None:
    config = _config(3)
    signers = [_caller("org1", subject=f"admin{i}@org1") for i in range(5)]
    assert signing_orgs(Policy(k=2), config, signers) == ["org1"]
    assert not satisfies(Policy(k=2), config, signers)


def test_only_the_policy_role_counts() -> None:
    config, policy = _config(3), Policy(k=1, role="node")
    assert not satisfies(policy, config, [_caller("org1", "admin"), _caller("org2", "client")])
    assert satisfies(policy, config, [_caller("org3", "node")])


def test_org_subset_and_strangers() -> None:
    config = _config(5)
    policy = Policy(k=0, orgs=["org2", "org4", "org9"])
    assert policy_orgs(policy, config) == ["org2", "org4"]  # org9 is not a member
    assert required_orgs(policy, config) == 2
    assert not satisfies(policy, config, [_caller("org1"), _caller("org2"), _caller("org3"), _caller("org9")])
    assert satisfies(policy, config, [_caller("org4"), _caller("org2")])


def test_k_larger_than_n_is_capped_and_nobody_never_satisfies() -> None:
    config = _config(3)
    assert required_orgs(Policy(k=7), config) == 3
    assert satisfies(Policy(k=7), config, [_caller(f"org{i}") for i in (1, 2, 3)])
    assert not satisfies(Policy(k=0), _config(0), [])
    assert not satisfies(Policy(k=1, orgs=["orgX"]), config, [_caller("org1")])


@given(
    n=st.integers(min_value=1, max_value=20),
    k=st.integers(min_value=0, max_value=25),
    signed=st.sets(st.integers(min_value=1, max_value=20)),
)
def test_satisfied_exactly_when_enough_distinct_member_orgs_sign(n: int, k: int, signed: set[int]) -> None:
    config = _config(n)
    signers = [_caller(f"org{i}") for i in sorted(signed)]
    members = [i for i in signed if i <= n]
    need = n // 2 + 1 if k == 0 else min(k, n)
    assert satisfies(Policy(k=k), config, signers) == (len(members) >= need)
