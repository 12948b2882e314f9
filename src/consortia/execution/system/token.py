"""The native token: the benchmark workload, so transfer is a few gets and puts, no scans.

An account id is the owning organisation and the certificate's subject joined by "/":
`caller.org + "/" + caller.subject`, e.g. "bank1/client3@bank1". A transaction moves tokens
only out of its signer's account. Balances live in the token contract's namespace under
composite_key("balance", account); the total supply under "supply".
"""

from __future__ import annotations

from typing import Any

from consortia.execution.context import (
    KEY_CHARS_MAX,
    STEPS_CALL,
    STEPS_EMIT,
    STEPS_GET,
    STEPS_PUT,
    Context,
    SystemContext,
    decode_trusted,
)
from consortia.execution.contract import ContractError
from consortia.execution.keys import contract_prefix
from consortia.execution.overlay import Overlay
from consortia.execution.system.base import (
    ACCOUNT_CHARS_MAX,
    STEPS_NATIVE_CALL,
    Direct,
    DirectPath,
    NativeContract,
    method,
    require_admin,
    require_int,
    require_str,
)
from consortia.types import Caller, Event, encode

AMOUNT_MAX = 2**63 - 1  # amounts, balances and the supply all stay below 2**63
SUPPLY_KEY = "supply"
_NAMESPACE = contract_prefix("token")


def account_of(org: str, subject: str) -> str:
    return f"{org}/{subject}"


def _balance_key(account: str) -> str:
    return "\x00balance\x00" + account + "\x00"  # == composite_key("balance", account)


def _account(value: object, what: str) -> str:
    account = require_str(value, what, ACCOUNT_CHARS_MAX, min_chars=3)
    if "/" not in account[1:-1]:
        raise ContractError(f"{what} must look like <org>/<subject>")
    return account


class Token(NativeContract):
    name = "token"

    @method()
    def issue(self, ctx: Context, account: object, amount: object) -> int:
        """Create `amount` new tokens in `account`; org admins only. Returns the new balance.

        Raises ContractError for a non-admin, a bad account, a non-positive amount or a
        supply that would reach 2**63.
        """
        require_admin(ctx, "issue")
        to = _account(account, "account")
        value = require_int(amount, "amount", 1, AMOUNT_MAX)
        supply = ctx.get(SUPPLY_KEY) or 0
        if supply + value > AMOUNT_MAX:
            raise ContractError("issue would overflow the total supply")
        key = _balance_key(to)
        balance = (ctx.get(key) or 0) + value
        ctx.put(key, balance)
        ctx.put(SUPPLY_KEY, supply + value)
        ctx.emit("Issued", {"account": to, "amount": value})
        return int(balance)

    @method()
    def transfer(self, ctx: SystemContext, to: object, amount: object) -> int:
        """Move `amount` from the signer's account to `to`. Returns the sender's new balance.

        Raises ContractError for a bad recipient, a non-positive amount or insufficient funds.
        Balances and the event are made of checked values only (exact str and int below
        2**63), so they are stored and emitted without being checked again.
        """
        recipient = _account(to, "recipient")
        value = require_int(amount, "amount", 1, AMOUNT_MAX)
        caller = ctx.caller
        sender = account_of(caller.org, caller.subject)
        from_key = ctx.state_key(_balance_key(sender))
        from_balance = ctx.get_at(from_key) or 0
        if from_balance < value:
            raise ContractError(f"insufficient funds: balance {from_balance}, amount {value}")
        if recipient != sender:
            to_key = ctx.state_key(_balance_key(recipient))
            # Cannot overflow: the total supply, which bounds every sum of balances, is < 2**63.
            ctx.put_checked(from_key, from_balance - value)
            ctx.put_checked(to_key, (ctx.get_at(to_key) or 0) + value)
            from_balance -= value
        # Keys in sorted order, as `emit` (which stores the decoded encoding) would give them.
        ctx.emit_checked("Transferred", {"amount": value, "from": sender, "to": recipient})
        return int(from_balance)

    def direct_paths(self) -> dict[str, DirectPath]:
        return {"transfer": self.transfer_direct}

    def transfer_direct(
        self, state: Overlay, signer: Caller, args: list[Any], steps_max: int
    ) -> Direct | None:
        """`transfer` called by a transaction, when it succeeds (see `direct_paths`): the
        same checks, reads, steps and writes in the same order, without a context, a meter
        or a transaction overlay. `state` is the block's state before the transaction."""
        if len(args) != 2:
            return None
        to, amount = args
        if type(to) is not str or type(amount) is not int or not 1 <= amount <= AMOUNT_MAX:
            return None
        if not 3 <= len(to) <= ACCOUNT_CHARS_MAX or "\x00" in to or "/" not in to[1:-1]:
            return None  # `_account` refuses it
        sender = account_of(signer.org, signer.subject)
        sender_key = _balance_key(sender)
        if len(sender_key) > KEY_CHARS_MAX:
            return None  # `Context._key` refuses it (a composite key otherwise passes)
        try:
            from_key = _NAMESPACE + sender_key.encode()
            to_key = _NAMESPACE + _balance_key(to).encode()
        except UnicodeEncodeError:
            return None
        raw = state.get(from_key)
        from_balance = 0 if raw is None else decode_trusted(raw) or 0
        if type(from_balance) is not int or from_balance < amount:
            return None
        steps = STEPS_CALL + STEPS_NATIVE_CALL + STEPS_GET + (0 if raw is None else len(raw) >> 5)
        writes: list[tuple[bytes, bytes]] = []
        if to != sender:
            from_raw = encode(from_balance - amount)
            raw = state.get(to_key)  # never from_key, so the write above cannot shadow it
            to_balance = 0 if raw is None else decode_trusted(raw) or 0
            if type(to_balance) is not int:
                return None
            to_raw = encode(to_balance + amount)
            steps += (
                STEPS_PUT
                + ((len(from_key) + len(from_raw)) >> 5)
                + STEPS_GET
                + (0 if raw is None else len(raw) >> 5)
                + STEPS_PUT
                + ((len(to_key) + len(to_raw)) >> 5)
            )
            writes = (
                [(from_key, from_raw), (to_key, to_raw)]
                if from_key < to_key
                else [(to_key, to_raw), (from_key, from_raw)]
            )
            from_balance -= amount
        payload = {"amount": amount, "from": sender, "to": to}
        steps += STEPS_EMIT + (len(encode(payload)) >> 5)
        if steps > steps_max:
            return None  # it runs out of steps somewhere: the call says where it stopped
        return [Event(self.name, "Transferred", payload)], steps, from_balance, writes

    @method(view=True)
    def balance(self, ctx: Context, account: object) -> int:
        """Raises ContractError for a malformed account id."""
        return int(ctx.get(_balance_key(_account(account, "account"))) or 0)

    @method(view=True)
    def total_supply(self, ctx: Context) -> int:
        return int(ctx.get(SUPPLY_KEY) or 0)
