"""The `config` system contract: read the channel config; change it by admin approval.

An org admin proposes an update (their approval counts at once); admins of other orgs approve
it. When the approvals meet the config's "admin" policy the update is applied: the new config,
with sequence + 1, replaces the old one in state, and the executor validates the following
transactions' identities under it. A proposal is tied to the config sequence it was made
against; once another update is applied it is stale and can no longer be approved.

Updates are dicts with an "op":
    {"op": "add_org", "name", "ca_certs", "tls_ca_certs", "crls" (optional)}
    {"op": "remove_org", "name"}
    {"op": "set_policy", "name", "k", "orgs", "role"}
    {"op": "update_crl", "org", "crl"}            replaces the org's CRLs with this one
    {"op": "set_block_limits", "txs_max", "bytes_max", "wait_ms",
                               "evm_gas_max", "evm_tx_gas_max"}      (any subset)
    {"op": "set_tx_steps_max", "tx_steps_max"}
    {"op": "evm_permit", "address", "org"}        allow an EVM account, bound to a member org
    {"op": "evm_revoke", "address"}               take an EVM account off the allowlist

The two EVM ops change the allowlist records (`execution.evm.permissions`) rather than the
config itself, but take the same path: same policy, and they bump the config sequence.
"""

from __future__ import annotations

from typing import Any

import msgspec

from consortia.execution.context import Context, SystemContext
from consortia.execution.contract import ContractError
from consortia.execution.evm.layout import allow_key
from consortia.execution.evm.outcome import BLOCK_GAS_LIMIT, GAS_TX_MIN, TX_GAS_MAX
from consortia.execution.evm.permissions import PERMISSION_OPS, check_permission_update, permission_record
from consortia.execution.keys import CONFIG_KEY, CONFIG_NEXT_PROPOSAL_KEY, config_proposal_key
from consortia.execution.system.base import (
    NativeContract,
    method,
    orgs_meet,
    require_admin,
    require_int,
    require_str,
)
from consortia.types import ChannelConfig, OrgConfig, Policy, Validator, decode_value, encode, encode_value

ORG_NAME_CHARS_MAX = 64
POLICY_NAME_CHARS_MAX = 64
CERTS_MAX = 16
CERT_BYTES_MAX = 64 * 1024
LIMIT_MAX = 2**62
# set_block_limits: each field's allowed range. An EVM gas limit below 21,000 (the least an
# Ethereum transaction costs) would refuse every transaction.
BLOCK_LIMIT_RANGES = {
    "txs_max": (1, LIMIT_MAX),
    "bytes_max": (1, LIMIT_MAX),
    "wait_ms": (0, LIMIT_MAX),
    "evm_gas_max": (GAS_TX_MIN, BLOCK_GAS_LIMIT),
    "evm_tx_gas_max": (GAS_TX_MIN, TX_GAS_MAX),
}
STATUS_PENDING = "pending"
STATUS_APPLIED = "applied"


def to_plain(obj: Any) -> Any:
    """A msgspec struct tree as plain dicts and lists (the form contracts and queries see)."""
    if isinstance(obj, msgspec.Struct):
        return {f: to_plain(getattr(obj, f)) for f in obj.__struct_fields__}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj


def _system(ctx: Context) -> SystemContext:
    if not isinstance(ctx, SystemContext):
        raise TypeError("system contracts run only with a SystemContext")
    return ctx


def _require_direct(ctx: SystemContext, what: str) -> None:
    if not ctx.direct:
        raise ContractError(f"{what} must be called directly by a transaction, not by a contract")


def _fields(update: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    allowed = {"op", *required, *optional}
    extra = sorted(k for k in update if k not in allowed)
    if extra:
        raise ContractError(f"unknown fields for {update['op']}: {', '.join(extra)}")
    missing = [k for k in required if k not in update]
    if missing:
        raise ContractError(f"missing fields for {update['op']}: {', '.join(missing)}")


def _der_list(value: Any, what: str, min_items: int) -> list[bytes]:
    if not isinstance(value, list) or not min_items <= len(value) <= CERTS_MAX:
        raise ContractError(f"{what} must be a list of {min_items}..{CERTS_MAX} DER blobs")
    for item in value:
        if not isinstance(item, bytes) or not 1 <= len(item) <= CERT_BYTES_MAX:
            raise ContractError(f"{what} must hold bytes of 1..{CERT_BYTES_MAX}")
    return list(value)


def _org_name(value: Any, what: str) -> str:
    name = require_str(value, what, ORG_NAME_CHARS_MAX)
    if "/" in name:
        raise ContractError(f"{what} may not contain '/'")
    return name


VALIDATOR_NAME_CHARS_MAX = 64


def apply_update(config: ChannelConfig, update: Any) -> ChannelConfig:
    """The config after `update`, with sequence + 1. Raises ContractError for a bad update."""
    if not isinstance(update, dict) or not isinstance(update.get("op"), str):
        raise ContractError("an update must be a dict with an 'op'")
    op = update["op"]
    replace = msgspec.structs.replace
    if op == "add_org":
        _fields(update, ("name", "ca_certs", "tls_ca_certs"), ("crls",))
        name = _org_name(update["name"], "name")
        if config.org(name) is not None:
            raise ContractError(f"org {name!r} already exists")
        org = OrgConfig(
            name,
            _der_list(update["ca_certs"], "ca_certs", 1),
            _der_list(update["tls_ca_certs"], "tls_ca_certs", 1),
            _der_list(update.get("crls", []), "crls", 0),
        )
        config = replace(config, orgs=[*config.orgs, org])
    elif op == "remove_org":
        _fields(update, ("name",))
        name = _org_name(update["name"], "name")
        if config.org(name) is None:
            raise ContractError(f"no org {name!r}")
        if len(config.orgs) == 1:
            raise ContractError("cannot remove the last org")
        config = replace(config, orgs=[o for o in config.orgs if o.name != name])
    elif op == "set_policy":
        _fields(update, ("name", "k", "orgs", "role"))
        name = require_str(update["name"], "name", POLICY_NAME_CHARS_MAX)
        k = require_int(update["k"], "k", 0, 1000)
        orgs = update["orgs"]
        if not isinstance(orgs, list) or len(orgs) > 1000:
            raise ContractError("orgs must be a list of org names")
        for org_name in orgs:
            if config.org(_org_name(org_name, "policy org")) is None:
                raise ContractError(f"policy names unknown org {org_name!r}")
        if len(set(orgs)) != len(orgs):
            raise ContractError("policy orgs repeat")
        role = require_str(update["role"], "role", 32)
        policies = dict(config.policies)
        policies[name] = Policy(k, list(orgs), role)
        config = replace(config, policies=dict(sorted(policies.items())))
    elif op == "update_crl":
        _fields(update, ("org", "crl"))
        name = _org_name(update["org"], "org")
        crl = _der_list([update["crl"]], "crl", 1)
        if config.org(name) is None:
            raise ContractError(f"no org {name!r}")
        config = replace(config, orgs=[replace(o, crls=crl) if o.name == name else o for o in config.orgs])
    elif op == "set_block_limits":
        _fields(update, (), tuple(BLOCK_LIMIT_RANGES))
        limits = {
            f: require_int(update[f], f, *BLOCK_LIMIT_RANGES[f]) for f in BLOCK_LIMIT_RANGES if f in update
        }
        block = replace(config.block, **limits)
        if block.evm_tx_gas_max > block.evm_gas_max:
            raise ContractError(
                f"evm_tx_gas_max {block.evm_tx_gas_max} exceeds evm_gas_max {block.evm_gas_max}: "
                "such a transaction could never fit a block"
            )
        config = replace(config, block=block)
    elif op == "set_tx_steps_max":
        _fields(update, ("tx_steps_max",))
        config = replace(
            config, tx_steps_max=require_int(update["tx_steps_max"], "tx_steps_max", 1, LIMIT_MAX)
        )
    elif op == "add_validator":
        _fields(update, ("name", "org", "cert"), ("address",))
        name = require_str(update["name"], "name", VALIDATOR_NAME_CHARS_MAX)
        member = _org_name(update["org"], "org")
        if config.org(member) is None:
            raise ContractError(f"no org {member!r}")
        if any(v.name == name for v in config.consensus.validators):
            raise ContractError(f"validator {name!r} already exists")
        cert = _der_list([update["cert"]], "cert", 1)[0]
        address = require_str(update.get("address", ""), "address", 256) if update.get("address") else ""
        validators = sorted(
            [*config.consensus.validators, Validator(name, member, cert, address)], key=_by_name
        )
        config = replace(config, consensus=replace(config.consensus, validators=validators))
    elif op == "remove_validator":
        _fields(update, ("name",))
        name = require_str(update["name"], "name", VALIDATOR_NAME_CHARS_MAX)
        kept = [v for v in config.consensus.validators if v.name != name]
        if len(kept) == len(config.consensus.validators):
            raise ContractError(f"no validator {name!r}")
        if not kept:
            raise ContractError("cannot remove the last validator")
        config = replace(config, consensus=replace(config.consensus, validators=kept))
    elif op in PERMISSION_OPS:
        check_permission_update(config, update)
    else:
        raise ContractError(f"unknown config op {op!r}")
    return replace(config, sequence=config.sequence + 1)


def _by_name(v: Validator) -> str:
    return v.name


def _checked(ctx: SystemContext, config: ChannelConfig, update: Any) -> ChannelConfig:
    new = apply_update(config, update)
    problem = ctx.env.runtime.config_problem(new)
    if problem is not None:
        raise ContractError(f"the updated config is unusable: {problem}")
    added = [v for v in new.consensus.validators if v not in config.consensus.validators]
    for v in added:
        # A validator must hold a valid node certificate of the org it is listed under.
        problem = ctx.env.runtime.validator_problem(new, v, ctx.timestamp_ms)
        if problem is not None:
            raise ContractError(f"validator {v.name!r} is not acceptable: {problem}")
    return new


class Config(NativeContract):
    name = "config"

    @method(view=True)
    def current(self, ctx: Context) -> Any:
        return to_plain(_system(ctx).channel_config())

    @method(view=True)
    def proposal(self, ctx: Context, proposal_id: object) -> Any:
        """The proposal record, or None. Raises ContractError for a bad id."""
        pid = require_int(proposal_id, "proposal_id", 1, LIMIT_MAX)
        raw = _system(ctx).get_record(config_proposal_key(pid))
        return None if raw is None else decode_value(raw)

    @method()
    def propose(self, ctx: Context, update: object) -> int:
        """Record an update proposal (approved by the proposer's org); returns its id.

        Applies it at once if that approval alone meets the admin policy. Raises
        ContractError for a non-admin, an indirect call, or an update that is malformed or
        would make the config unusable.
        """
        sctx = _system(ctx)
        require_admin(sctx, "propose")
        _require_direct(sctx, "propose")
        config = sctx.channel_config()
        _checked(sctx, config, update)
        raw_next = sctx.get_record(CONFIG_NEXT_PROPOSAL_KEY)
        pid = 1 if raw_next is None else int(decode_value(raw_next))
        sctx.put_record(CONFIG_NEXT_PROPOSAL_KEY, encode_value(pid + 1))
        record = {
            "id": pid,
            "update": update,
            "proposer": sctx.caller.org,
            "sequence": config.sequence,
            "approvals": [sctx.caller.org],
            "status": STATUS_PENDING,
        }
        sctx.emit("Proposed", {"id": pid, "org": sctx.caller.org})
        self._settle(sctx, config, record)
        return pid

    @method()
    def approve(self, ctx: Context, proposal_id: object) -> bool:
        """Add the signer's org to a proposal's approvals; returns whether it was applied.

        Raises ContractError for a non-admin, an indirect call, an unknown, applied or stale
        proposal, a repeated approval, or an update no longer applicable.
        """
        sctx = _system(ctx)
        require_admin(sctx, "approve")
        _require_direct(sctx, "approve")
        pid = require_int(proposal_id, "proposal_id", 1, LIMIT_MAX)
        raw = sctx.get_record(config_proposal_key(pid))
        if raw is None:
            raise ContractError(f"no proposal {pid}")
        record = decode_value(raw)
        if record["status"] != STATUS_PENDING:
            raise ContractError(f"proposal {pid} is {record['status']}")
        config = sctx.channel_config()
        if record["sequence"] != config.sequence:
            raise ContractError(f"proposal {pid} is stale: made at config sequence {record['sequence']}")
        org = sctx.caller.org
        if org in record["approvals"]:
            raise ContractError(f"org {org!r} already approved proposal {pid}")
        record["approvals"] = sorted([*record["approvals"], org])
        sctx.emit("Approved", {"id": pid, "org": org})
        return self._settle(sctx, config, record)

    def _settle(self, ctx: SystemContext, config: ChannelConfig, record: dict[str, Any]) -> bool:
        applied = orgs_meet(config.policies.get("admin", _NO_POLICY), config, record["approvals"])
        if applied:
            new = _checked(ctx, config, record["update"])
            ctx.put_record(CONFIG_KEY, encode(new))
            if record["update"]["op"] in PERMISSION_OPS:
                address, org = check_permission_update(config, record["update"])
                if org is None:
                    ctx.delete_record(allow_key(address))
                else:
                    ctx.put_record(allow_key(address), permission_record(org))
            record["status"] = STATUS_APPLIED
            ctx.emit("ConfigUpdated", {"id": record["id"], "sequence": new.sequence})
        ctx.put_record(config_proposal_key(record["id"]), encode_value(record))
        return applied


# A channel without an "admin" policy falls back to a majority of org admins.
_NO_POLICY = Policy()
