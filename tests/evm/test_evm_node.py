"""A node admits raw Ethereum transactions on its submit endpoint and commits them.

End to end in process: admins permit an account by config proposals, the account deploys
an ERC-20 and transfers with raw signed transactions, admission refuses what Ethereum
clients must see refused, the native block and transaction API shows the EVM transactions,
and a second ledger replaying the certified blocks reaches the same state root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rlp

from consortia.crypto import BatchVerifier
from consortia.execution.evm.layout import read_account
from consortia.execution.executor import Executor
from consortia.identity.msp import MSP
from consortia.node.blocks import BlockProcessor
from consortia.node.runtime import open_ledger_with_genesis
from consortia.types.eth import SECP256K1_N, eth_chain_id, keccak256, sign_eth_transaction
from tests.node.conftest import Harness, run_node

from .evm_kit import ALICE, ALICE_KEY, BOB, BOB_KEY, TRANSFER_TOPIC, call_data, token_deploy_data
from .node_kit import permit, submit, unbytes


def high_s(raw: bytes) -> bytes:
    items = rlp.decode(raw[1:])
    items[-3] = b"" if items[-3] else b"\x01"
    items[-1] = (SECP256K1_N - int.from_bytes(items[-1], "big")).to_bytes(32, "big")
    return raw[:1] + rlp.encode(items)


def test_node_admits_and_commits_raw_ethereum_transactions(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> tuple[list[Any], bytes]:
        cfg = h.node.config
        chain_id = eth_chain_id(cfg.chain_id, cfg.channel)

        def sign(key: bytes, nonce: int, to: bytes | None, data: bytes, **kw: Any) -> bytes:
            return sign_eth_transaction(
                key, chain_id=kw.pop("chain_id", chain_id), nonce=nonce, gas=1_000_000, to=to, data=data, **kw
            )

        # Not on the allowlist yet: refused at the door with a clear code.
        deploy = sign(ALICE_KEY, 0, None, token_deploy_data("Coin", "C", 1_000_000))
        resp = await submit(h, deploy)
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "not_permitted"
        assert ALICE.hex() in resp.json()["error"]["message"]

        await permit(h, ALICE, "org1")
        resp = await submit(h, deploy)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert out["tx_id"] == keccak256(deploy).hex()
        assert out["status"] == "committed" and out["receipt"]["status"] == "ok", out
        token = unbytes(out["receipt"]["result"]["contract_address"])

        transfer = sign(ALICE_KEY, 1, token, call_data("transfer(address,uint256)", BOB, 300))
        out = (await submit(h, transfer)).json()
        assert out["receipt"]["status"] == "ok", out
        (event,) = out["receipt"]["events"]
        assert (event["contract"], event["name"]) == ("evm", "log")
        assert unbytes(event["payload"]["topics"][0]) == TRANSFER_TOPIC

        head = h.node.ledger.head
        assert head is not None
        call = h.node.executor.eth_call(
            h.node.ledger.state,
            cfg,
            head.height,
            head.timestamp_ms,
            BOB,
            token,
            call_data("balanceOf(address)", BOB),
        )
        assert int.from_bytes(call.output, "big") == 300
        assert read_account(h.node.ledger.state, ALICE).nonce == 2

        # What Ethereum clients must see refused, with nothing stored.
        root = h.state_root()
        refusals = {
            "duplicate_transaction": (transfer, 409),
            "nonce_too_low": (sign(ALICE_KEY, 1, token, call_data("transfer(address,uint256)", BOB, 1)), 400),
            "wrong_chain": (sign(ALICE_KEY, 2, token, b"", chain_id=chain_id + 1), 400),
            "bad_signature": (high_s(sign(ALICE_KEY, 2, token, b"")), 401),
            "not_permitted": (sign(BOB_KEY, 0, token, b""), 403),
            "unprotected": (_unprotected(), 400),
            "malformed": (b"\x02" + rlp.encode([b"\x01"]), 400),
        }
        for code, (raw, status) in refusals.items():
            resp = await submit(h, raw, wait=False)
            assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
        assert h.state_root() == root
        assert h.node.stats.rejected["not_permitted"] == 2

        # The native API shows the EVM transaction, in its block and on its own.
        info = (await h.http.get(f"/v1/channels/main/transactions/{keccak256(transfer).hex()}")).json()
        assert info["status"] == "committed"
        assert info["transaction"]["kind"] == "eth"
        assert info["transaction"]["from"] == "0x" + ALICE.hex()
        assert info["transaction"]["to"] == "0x" + token.hex()
        block = (await h.http.get(f"/v1/channels/main/blocks/{info['height']}")).json()
        assert [t["tx_id"] for t in block["transactions"]] == [keccak256(transfer).hex()]

        blocks = [h.node.ledger.block(i) for i in range(h.node.ledger.height + 1)]
        return blocks, h.state_root()

    blocks, root = run_node(evm_crypto_dir, tmp_path / "net", body)

    # Another validator replays the certified blocks, Ethereum transactions included, and
    # reaches the same state root (it decodes them and recovers their senders itself).
    genesis = blocks[0]
    ledger = open_ledger_with_genesis(tmp_path / "replica", genesis)
    with ledger:
        from consortia.execution.genesis import config_from_state

        config = config_from_state(ledger.state)
        verifier = BatchVerifier()
        try:
            processor = BlockProcessor(ledger, Executor(MSP), verifier)
            for block in blocks[1:]:
                assert block is not None and block.certificate is not None
                executed = processor.commit(config, block, block.certificate)
                assert executed is not None
                config = executed.outcome.config
        finally:
            verifier.close()
        assert ledger.state_root == root


def _unprotected() -> bytes:
    """A legacy transaction signed without a chain id (v = 27/28): replayable anywhere."""
    import coincurve

    body = [b"", b"", (21_000).to_bytes(2, "big"), BOB, b"", b""]
    signature = coincurve.PrivateKey(ALICE_KEY).sign_recoverable(keccak256(rlp.encode(body)), hasher=None)
    r, s, v = signature[:32].lstrip(b"\x00"), signature[32:64].lstrip(b"\x00"), 27 + signature[64]
    return bytes(rlp.encode([*body, bytes([v]), r, s]))
