"""The state key layout: where every record of a channel lives.

All keys are bytes; the layout keeps each owner's records in one contiguous, ordered range so
prefix scans are cheap and the store sees related keys together.

    c/<contract>\\x00<user key>          data of a contract (user or system), key in UTF-8
    s/config                             the channel config: canonical encoding of ChannelConfig
    s/config/proposal/<id:016x>          a pending or applied config update proposal
    s/config/next_proposal               the next proposal id
    s/lifecycle/def/<name>               a committed user contract's definition
    s/lifecycle/approval/<name>\\x00<version>\\x00<org>
                                         one org's approval (the approved source hash)

Contract names never contain `\\x00`, so `c/<contract>\\x00` namespaces are disjoint, and a
contract can only reach its own namespace through its context. Token balances are data of the
`token` contract: `c/token\\x00` + composite_key("balance", account).

Composite keys (as in Fabric): `\\x00` + object type + `\\x00` + each attribute + `\\x00`. Every
part ends in `\\x00` and no part may contain one, so the composite key of a type and its first
attributes is a prefix of exactly the keys that extend it ("balance" + "bank1/alice" never
matches "balance" + "bank1/alice2"). Plain user keys may not contain `\\x00`, so they never
collide with composite keys.
"""

from __future__ import annotations

import re

from consortia.execution.errors import KeyLayoutError

CONTRACT_PREFIX = b"c/"
CONFIG_KEY = b"s/config"
CONFIG_PROPOSAL_PREFIX = b"s/config/proposal/"
CONFIG_NEXT_PROPOSAL_KEY = b"s/config/next_proposal"
LIFECYCLE_DEF_PREFIX = b"s/lifecycle/def/"
LIFECYCLE_APPROVAL_PREFIX = b"s/lifecycle/approval/"

SEP = "\x00"
SYSTEM_CONTRACTS = ("config", "lifecycle", "token")
CONTRACT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def is_contract_name(name: str) -> bool:
    """True for names a user contract may take: [a-z][a-z0-9_]{0,31}, not a system name."""
    return CONTRACT_NAME_RE.fullmatch(name) is not None and name not in SYSTEM_CONTRACTS


def _check_part(part: str, what: str) -> bytes:
    if SEP in part:
        raise KeyLayoutError(f"{what} may not contain \\x00")
    try:
        return part.encode()
    except UnicodeEncodeError as exc:
        raise KeyLayoutError(f"{what} is not encodable as UTF-8") from exc


def contract_prefix(contract: str) -> bytes:
    """The prefix of every key in a contract's namespace.

    Raises KeyLayoutError if the name contains \\x00 or is not UTF-8 encodable.
    """
    return CONTRACT_PREFIX + _check_part(contract, "contract name") + b"\x00"


def contract_key(contract: str, key: str) -> bytes:
    """A contract's data key. Raises KeyLayoutError for an unencodable name or key."""
    try:
        return contract_prefix(contract) + key.encode()
    except UnicodeEncodeError as exc:
        raise KeyLayoutError("key is not encodable as UTF-8") from exc


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: unbounded)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def composite_key(object_type: str, *attrs: str) -> str:
    """Join an object type and attributes into a composite key.

    Raises KeyLayoutError if the type is empty or any part is not a str or contains \\x00.
    """
    parts = (object_type, *attrs)
    for part in parts:
        if not isinstance(part, str):
            raise KeyLayoutError("composite key parts must be strings")
        if SEP in part:
            raise KeyLayoutError("composite key parts may not contain \\x00")
    if not object_type:
        raise KeyLayoutError("composite key object type may not be empty")
    return SEP + SEP.join(parts) + SEP


def is_composite_key(key: str) -> bool:
    return len(key) >= 3 and key[0] == SEP and key[-1] == SEP and key[1] != SEP


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """The object type and attributes of a composite key.

    Raises KeyLayoutError if `key` was not made by composite_key.
    """
    if not isinstance(key, str) or not is_composite_key(key):
        raise KeyLayoutError("not a composite key")
    parts = key[1:-1].split(SEP)
    return parts[0], parts[1:]


def config_proposal_key(proposal_id: int) -> bytes:
    return CONFIG_PROPOSAL_PREFIX + f"{proposal_id:016x}".encode()


def lifecycle_def_key(name: str) -> bytes:
    """Raises KeyLayoutError for a name that is not a valid contract name."""
    if not is_contract_name(name):
        raise KeyLayoutError(f"invalid contract name {name!r}")
    return LIFECYCLE_DEF_PREFIX + name.encode()


def lifecycle_approval_prefix(name: str, version: str) -> bytes:
    """Prefix of every org's approval of (name, version). Raises KeyLayoutError."""
    if not is_contract_name(name):
        raise KeyLayoutError(f"invalid contract name {name!r}")
    return LIFECYCLE_APPROVAL_PREFIX + name.encode() + b"\x00" + _check_part(version, "version") + b"\x00"


def lifecycle_approval_key(name: str, version: str, org: str) -> bytes:
    """Raises KeyLayoutError for an invalid name or a version/org containing \\x00."""
    return lifecycle_approval_prefix(name, version) + _check_part(org, "org name")
