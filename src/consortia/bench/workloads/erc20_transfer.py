"""EVM ERC-20 transfers: Solidity `transfer(to, 1)` in pre-signed Ethereum transactions.

The token is the minimal ERC-20 of `erc20_token.json`: the compiled artifact (solc-js
0.8.28, optimizer on) of tests/evm/fixtures/Token.sol, copied here so the harness does not
import the test suite; regenerate it with tests/evm/fixtures/compile.js.

Senders are `SENDERS` Ethereum accounts whose keys are derived from the first org's
client0 Ethereum key (`eth.key`, written by `consortia network up`), so every client
process can rebuild them from the crypto directory while nobody without it can. Set-up
puts them on the channel's EVM allowlist by config proposals its org admins approve (the
way an operator permits an account), deploys the token as sender 0's first transaction
(so its address is known to every process without asking) and gives every sender
`FUNDING` tokens. Many senders keep each account's run of in-flight nonces short: a
sender's transactions are proposed in nonce order and a nonce gap holds the rest back.

This is the template for a workload of raw transactions: set `raw = True` and implement
`raw_transactions`, which signs in the client process before the timed phase.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import rlp

from consortia.bench.errors import BenchError
from consortia.bench.workload import SetupEnv, WorkerEnv, Workload
from consortia.identity.ethkeys import load_eth_key
from consortia.types.eth import eth_address, keccak256, sign_eth_transaction

SENDERS = 32
RECIPIENTS = 64
SUPPLY = 10**30
FUNDING = 10**24  # per sender: far more than any run moves
# A transfer to an address that already holds tokens uses about 35k gas, to a fresh one
# about 52k. The pool fills a block by the gas limits transactions declare, so the limit
# sets how many fit under the channel's block gas budget (BlockLimits.evm_gas_max).
TRANSFER_GAS = 60_000
DEPLOY_GAS = 1_500_000
RPC_TIMEOUT_S = 30.0
COMMIT_WAIT_MS = 30_000
_KEY_DOMAIN = b"consortia-bench/erc20/sender/"
_RECIPIENT_DOMAIN = b"consortia-bench/erc20/recipient/"


def token_artifact() -> dict[str, Any]:
    """The compiled token: its ABI, creation bytecode and the compiler that made it."""
    text = resources.files("consortia.bench.workloads").joinpath("erc20_token.json").read_text()
    artifact: dict[str, Any] = json.loads(text)
    return artifact


# ---- ABI: the three encodings this workload needs -------------------------------------------


def _selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _string(text: str) -> bytes:
    raw = text.encode()
    return _word(len(raw)) + raw + b"\x00" * (-len(raw) % 32)


def deploy_data(name: str, symbol: str, supply: int) -> bytes:
    """Creation code plus the ABI-encoded constructor(string, string, uint256)."""
    code = bytes.fromhex(token_artifact()["bytecode"])
    head_name, head_symbol = _string(name), _string(symbol)
    return code + _word(96) + _word(96 + len(head_name)) + _word(supply) + head_name + head_symbol


def transfer_data(to: bytes, value: int) -> bytes:
    return _selector("transfer(address,uint256)") + b"\x00" * 12 + to + _word(value)


def balance_of_data(holder: bytes) -> bytes:
    return _selector("balanceOf(address)") + b"\x00" * 12 + holder


def create_address(sender: bytes, nonce: int) -> bytes:
    """The address of the contract `sender` creates with its transaction of `nonce`."""
    return keccak256(rlp.encode([sender, nonce]))[12:]


# ---- accounts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accounts:
    sender_keys: list[bytes]
    senders: list[bytes]  # addresses, in the order of sender_keys
    recipients: list[bytes]
    token: bytes

    @staticmethod
    def of(crypto: Path, orgs: list[str]) -> Accounts:
        """Derive the accounts from the first org's client0 Ethereum key.

        Raises BenchError when that key is missing or malformed.
        """
        from consortia.identity.errors import IdentityError

        if not orgs:
            raise BenchError("erc20_transfer needs at least one organisation")
        org = orgs[0]
        try:
            seed = load_eth_key(crypto / "orgs" / org / "users" / f"client0@{org}")
        except (IdentityError, OSError) as exc:
            raise BenchError(f"erc20_transfer needs client0@{org}'s Ethereum key: {exc}") from exc
        keys = [keccak256(seed + _KEY_DOMAIN + str(i).encode()) for i in range(SENDERS)]
        senders = [eth_address(k) for k in keys]
        recipients = [keccak256(_RECIPIENT_DOMAIN + str(i).encode())[12:] for i in range(RECIPIENTS)]
        return Accounts(keys, senders, recipients, create_address(senders[0], 0))


class Rpc:
    """Just enough Ethereum JSON-RPC (and the native submit-and-wait) for set-up and nonces."""

    def __init__(self, url: str, channel: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=RPC_TIMEOUT_S)
        self.channel = channel

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, *params: Any) -> Any:
        """Raises BenchError for a JSON-RPC error or an unreachable node."""
        try:
            body = self.http.post(
                "/jsonrpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
            ).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BenchError(f"{method} failed: {exc}") from exc
        if "error" in body:
            raise BenchError(f"{method} failed: {body['error']}")
        return body["result"]

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def next_nonce(self, address: bytes) -> int:
        return int(self.call("eth_getTransactionCount", "0x" + address.hex(), "pending"), 16)

    def code(self, address: bytes) -> bytes:
        return bytes.fromhex(self.call("eth_getCode", "0x" + address.hex(), "latest")[2:])

    def balance(self, token: bytes, holder: bytes) -> int:
        call = {"to": "0x" + token.hex(), "data": "0x" + balance_of_data(holder).hex()}
        return int(self.call("eth_call", call, "latest"), 16)

    def commit(self, raws: list[bytes]) -> None:
        """Submit raw transactions in one batch and wait until each has committed successfully.

        Raises BenchError when one is refused, not committed in time, or fails.
        """
        from consortia.types import encode
        from consortia.types.eth import tx_id_of

        path = f"/v1/channels/{self.channel}/transactions"
        try:
            resp = self.http.post(
                f"{path}/batch", content=encode(raws), headers={"content-type": "application/octet-stream"}
            )
            refused = [r["error"] for r in resp.json()["results"] if "error" in r]
            if resp.status_code != 200 or refused:
                raise BenchError(f"set-up transactions refused: {refused or resp.text}")
            for raw in raws:
                out = self.http.get(
                    f"{path}/{tx_id_of(raw).hex()}",
                    params={"wait": "true", "timeout_ms": COMMIT_WAIT_MS},
                    timeout=COMMIT_WAIT_MS / 1000 + 5,
                ).json()
                receipt = out.get("receipt")
                if receipt is None:
                    raise BenchError(f"set-up transaction {tx_id_of(raw).hex()} was not committed in time")
                if receipt["status"] != "ok":
                    raise BenchError(f"set-up transaction failed: {receipt['error'] or receipt['status']}")
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise BenchError(f"set-up transactions failed: {exc}") from exc


def permit(env: SetupEnv, address: bytes, org: str) -> None:
    """Put `address` on the EVM allowlist, bound to `org`: org admins propose and approve.

    Raises BenchError when the proposal fails or the admins' approvals never apply it.
    """
    update = {"op": "evm_permit", "address": "0x" + address.hex(), "org": org}
    with env.client(env.admin(env.orgs[0])) as c:
        out = c.invoke("config", "propose", update)
    receipt = _ok(out, "evm_permit proposal")
    proposal = receipt["result"]
    approvers = iter(env.orgs[1:])
    while not any(e["name"] == "ConfigUpdated" for e in receipt["events"]):
        approver = next(approvers, None)
        if approver is None:
            raise BenchError(f"the evm_permit of 0x{address.hex()} was never applied")
        with env.client(env.admin(approver)) as c:
            receipt = _ok(c.invoke("config", "approve", proposal), "evm_permit approval")


def _ok(out: dict[str, Any], what: str) -> dict[str, Any]:
    receipt: dict[str, Any] | None = out.get("receipt")
    if receipt is None:
        raise BenchError(f"{what} was not committed in time")
    if receipt["status"] != "ok":
        raise BenchError(f"{what} failed: {receipt['error']}")
    return receipt


class Erc20Transfer(Workload):
    name = "erc20_transfer"
    description = "ERC-20 transfer of 1 token (Solidity on the EVM, pre-signed EIP-1559 txs)"
    raw = True

    def __init__(self) -> None:
        self._accounts: Accounts | None = None
        self._chain_id = 0

    def setup(self, env: SetupEnv) -> None:
        """Permit and fund the senders and deploy the token, skipping what is done already."""
        a = Accounts.of(env.crypto, env.orgs)
        with Rpc(env.urls[0], env.channel) as rpc:
            deployed = bool(rpc.code(a.token))
            balances = [rpc.balance(a.token, s) if deployed else 0 for s in a.senders]
            short = [i for i, b in enumerate(balances) if b < FUNDING // 2]
            for i in short:
                permit(env, a.senders[i], env.orgs[i % len(env.orgs)])
            chain_id = rpc.chain_id()
            funder = a.sender_keys[0]
            if not deployed:
                if rpc.next_nonce(a.senders[0]) != 0:
                    raise BenchError(f"the token's deployer 0x{a.senders[0].hex()} has sent before")
                deploy = deploy_data("Bench Token", "BENCH", SUPPLY)
                raw = sign_eth_transaction(
                    funder, chain_id=chain_id, nonce=0, gas=DEPLOY_GAS, to=None, data=deploy
                )
                rpc.commit([raw])
                if not rpc.code(a.token):
                    raise BenchError(f"the token was not deployed at 0x{a.token.hex()}")
            nonce = rpc.next_nonce(a.senders[0])
            raws = []
            for i in short:
                if i == 0:
                    continue  # the deployer holds the supply
                data = transfer_data(a.senders[i], FUNDING)
                raws.append(
                    sign_eth_transaction(
                        funder, chain_id=chain_id, nonce=nonce, gas=TRANSFER_GAS, to=a.token, data=data
                    )
                )
                nonce += 1
            if raws:
                rpc.commit(raws)

    def raw_transactions(self, env: WorkerEnv, count: int) -> list[bytes]:
        """Transfers of 1 token from this process's senders, round robin, consecutive nonces."""
        if env.workers > SENDERS:
            raise BenchError(f"erc20_transfer has {SENDERS} senders: use at most {SENDERS} workers")
        if self._accounts is None:
            self._accounts = Accounts.of(env.crypto, env.orgs)
        a = self._accounts
        mine = list(range(env.index, SENDERS, env.workers))
        with Rpc(env.urls[0], env.channel) as rpc:
            if not self._chain_id:
                self._chain_id = rpc.chain_id()
            # Asked before every run: what an earlier run left behind decides where to go on.
            nonces = {i: rpc.next_nonce(a.senders[i]) for i in mine}
        out = []
        for j in range(count):
            i = mine[j % len(mine)]
            to = a.recipients[(env.index * 7919 + j) % RECIPIENTS]
            out.append(
                sign_eth_transaction(
                    a.sender_keys[i],
                    chain_id=self._chain_id,
                    nonce=nonces[i],
                    gas=TRANSFER_GAS,
                    to=a.token,
                    data=transfer_data(to, 1),
                )
            )
            nonces[i] += 1
        return out


WORKLOAD = Erc20Transfer()
