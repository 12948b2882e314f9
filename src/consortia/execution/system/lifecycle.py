"""The `lifecycle` system contract: Fabric-style approve-then-commit of user contracts.

Each org's admin approves (name, version, sha256 of the source). Once approvals for exactly
that triple meet the channel's "lifecycle" policy, any org admin commits the source: it is
checked against the sandbox, stored as the contract's definition and callable from the next
operation on. An upgrade is the same with a new version; the name keeps its state.
"""

from __future__ import annotations

import re
from typing import Any

from consortia.crypto import sha256
from consortia.execution.context import Context, SystemContext
from consortia.execution.contract import ContractError
from consortia.execution.keys import (
    is_contract_name,
    lifecycle_approval_key,
    lifecycle_approval_prefix,
    lifecycle_def_key,
)
from consortia.execution.sandbox import SandboxViolation
from consortia.execution.system.base import NativeContract, method, orgs_meet, require_admin, require_str
from consortia.types import decode_value, encode_value

VERSION_CHARS_MAX = 32
SOURCE_CHARS_MAX = 128 * 1024
STEPS_COMPILE_BASE = 1_000  # plus one step per source character
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def _system(ctx: Context) -> SystemContext:
    if not isinstance(ctx, SystemContext):
        raise TypeError("system contracts run only with a SystemContext")
    return ctx


def _name(value: object) -> str:
    if not isinstance(value, str) or not is_contract_name(value):
        raise ContractError("contract names match [a-z][a-z0-9_]{0,31} and are not system names")
    return value


def _version(value: object) -> str:
    return require_str(value, "version", VERSION_CHARS_MAX)


def _require_direct(ctx: SystemContext, what: str) -> None:
    if not ctx.direct:
        raise ContractError(f"{what} must be called directly by a transaction, not by a contract")


def source_hash_hex(source: str) -> str:
    return sha256(source.encode()).hex()


class Lifecycle(NativeContract):
    name = "lifecycle"

    @method()
    def approve(self, ctx: Context, name: object, version: object, source_hash_hex: object) -> None:
        """Record the signer's org approval of (name, version, hash), replacing an earlier one.

        Raises ContractError for a non-admin, an indirect call or malformed arguments.
        """
        sctx = _system(ctx)
        require_admin(sctx, "approve")
        _require_direct(sctx, "approve")
        cname, cversion = _name(name), _version(version)
        if not isinstance(source_hash_hex, str) or _HASH_RE.fullmatch(source_hash_hex) is None:
            raise ContractError("source_hash_hex must be 64 lowercase hex digits")
        org = sctx.caller.org
        sctx.put_record(lifecycle_approval_key(cname, cversion, org), encode_value(source_hash_hex))
        sctx.emit("Approved", {"name": cname, "version": cversion, "hash": source_hash_hex, "org": org})

    @method()
    def commit(self, ctx: Context, name: object, version: object, source: object) -> str:
        """Check, store and enable a contract definition; returns the source hash (hex).

        Raises ContractError for a non-admin, an indirect call, bad arguments, a source the
        sandbox rejects (listing its problems), approvals for (name, version, hash) that do
        not meet the "lifecycle" policy, or a version already committed.
        """
        sctx = _system(ctx)
        require_admin(sctx, "commit")
        _require_direct(sctx, "commit")
        cname, cversion = _name(name), _version(version)
        if not isinstance(source, str) or not 1 <= len(source) <= SOURCE_CHARS_MAX:
            raise ContractError(f"source must be a str of 1..{SOURCE_CHARS_MAX} characters")
        try:
            digest = source_hash_hex(source)
        except UnicodeEncodeError as exc:
            raise ContractError("source is not encodable as UTF-8") from exc
        sctx.env.meter.charge(STEPS_COMPILE_BASE + len(source))
        try:
            sctx.env.runtime.compile(source)
        except SandboxViolation as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            raise ContractError("sandbox violation: " + "; ".join(str(p) for p in problems)) from exc
        approvals = self._approving_orgs(sctx, cname, cversion, digest)
        config = sctx.channel_config()
        policy = config.policies.get("lifecycle")
        if policy is None:
            raise ContractError("the channel has no lifecycle policy")
        if not orgs_meet(policy, config, approvals):
            raise ContractError(
                f"approvals of {cname} {cversion} (hash {digest[:16]}...) from {approvals} "
                "do not meet the lifecycle policy"
            )
        raw = sctx.get_record(lifecycle_def_key(cname))
        if raw is not None and decode_value(raw)["version"] == cversion:
            raise ContractError(f"{cname} version {cversion} is already committed")
        definition = {
            "name": cname,
            "version": cversion,
            "source": source,
            "hash": digest,
            "approvals": approvals,
        }
        sctx.put_record(lifecycle_def_key(cname), encode_value(definition))
        sctx.emit("Committed", {"name": cname, "version": cversion, "hash": digest})
        return digest

    @method(view=True)
    def definition(self, ctx: Context, name: object) -> Any:
        """The committed definition {name, version, source, hash, approvals}, or None."""
        raw = _system(ctx).get_record(lifecycle_def_key(_name(name)))
        return None if raw is None else decode_value(raw)

    @method(view=True)
    def approvals(self, ctx: Context, name: object, version: object) -> dict[str, str]:
        """Each approving org's approved source hash for (name, version)."""
        sctx = _system(ctx)
        return self._approvals(sctx, _name(name), _version(version))

    def _approvals(self, ctx: SystemContext, name: str, version: str) -> dict[str, str]:
        prefix = lifecycle_approval_prefix(name, version)
        return {key[len(prefix) :].decode(): decode_value(raw) for key, raw in ctx.scan_records(prefix)}

    def _approving_orgs(self, ctx: SystemContext, name: str, version: str, digest: str) -> list[str]:
        return sorted(
            org for org, approved in self._approvals(ctx, name, version).items() if approved == digest
        )
