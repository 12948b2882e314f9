"""The native token: the benchmark workload, so transfer is a few gets and puts, no scans.

An account id is the owning organisation and the certificate's subject joined by "/":
`caller.org + "/" + caller.subject`, e.g. "bank1/client3@bank1". A transaction moves tokens
only out of its signer's account. Balances live in the token contract's namespace under
composite_key("balance", account); the total supply under "supply".
"""

from __future__ import annotations

from consortia.execution.context import Context, SystemContext
from consortia.execution.contract import ContractError
from consortia.execution.system.base import (
    ACCOUNT_CHARS_MAX,
    NativeContract,
    method,
    require_admin,
    require_int,
    require_str,
)

AMOUNT_MAX = 2**63 - 1  # amounts, balances and the supply all stay below 2**63
SUPPLY_KEY = "supply"


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

    @method(view=True)
    def balance(self, ctx: Context, account: object) -> int:
        """Raises ContractError for a malformed account id."""
        return int(ctx.get(_balance_key(_account(account, "account"))) or 0)

    @method(view=True)
    def total_supply(self, ctx: Context) -> int:
        return int(ctx.get(SUPPLY_KEY) or 0)
