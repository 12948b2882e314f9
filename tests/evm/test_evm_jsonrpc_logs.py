"""eth_getLogs and polled filters: addresses, topics, block ranges, limits, change polling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consortia.api.jsonrpc import RpcLimits
from consortia.api.jsonrpc.codec import RpcError
from consortia.api.jsonrpc.filters import FilterRegistry
from consortia.types.eth import keccak256
from tests.node.conftest import Harness, run_node

from .evm_kit import (
    ALICE,
    ALICE_KEY,
    BOB,
    PROBE_CODE,
    TRANSFER_TOPIC,
    address_word,
    call_data,
    token_deploy_data,
    word,
)
from .node_kit import permit
from .rpc_kit import Wallet, error, result

CAROL = bytes.fromhex("ca" * 20)
STORED_TOPIC = "0x" + keccak256(b"Stored(uint256,uint256)").hex()


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _hashes(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(log["transactionHash"], log["logIndex"]) for log in logs]


def test_get_logs_filters_by_address_topics_and_range(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)
        minted = await alice.send_and_wait(None, token_deploy_data("Coin", "C", 1_000))
        token = bytes.fromhex(minted["contractAddress"][2:])
        probe = bytes.fromhex((await alice.send_and_wait(None, PROBE_CODE))["contractAddress"][2:])
        to_bob = await alice.send_and_wait(token, call_data("transfer(address,uint256)", BOB, 10))
        to_carol = await alice.send_and_wait(token, call_data("transfer(address,uint256)", CAROL, 20))
        stored = await alice.send_and_wait(probe, call_data("store(uint256,uint256)", 7, 70))
        failed = await alice.send_and_wait(token, call_data("transfer(address,uint256)", BOB, 10**9))
        assert failed["status"] == "0x0" and failed["logs"] == []
        everything = {"fromBlock": "earliest", "toBlock": "latest"}

        def expect(*receipts: dict[str, Any]) -> list[tuple[str, str]]:
            return _hashes([log for r in receipts for log in r["logs"]])

        all_logs = await result(h, "eth_getLogs", everything)
        assert _hashes(all_logs) == expect(minted, to_bob, to_carol, stored)
        assert all_logs == [log for r in (minted, to_bob, to_carol, stored) for log in r["logs"]]
        assert _hashes(await result(h, "eth_getLogs", {**everything, "address": _hex(token)})) == expect(
            minted, to_bob, to_carol
        )
        both = await result(h, "eth_getLogs", {**everything, "address": [_hex(probe), _hex(token)]})
        assert _hashes(both) == expect(minted, to_bob, to_carol, stored)
        assert await result(h, "eth_getLogs", {**everything, "address": _hex(BOB)}) == []
        transfer = _hex(TRANSFER_TOPIC)
        by_event = await result(h, "eth_getLogs", {**everything, "topics": [transfer]})
        assert _hashes(by_event) == expect(minted, to_bob, to_carol)
        to_bob_only = {**everything, "topics": [transfer, None, _hex(address_word(BOB))]}
        assert _hashes(await result(h, "eth_getLogs", to_bob_only)) == expect(to_bob)
        either = {**everything, "topics": [None, None, [_hex(address_word(BOB)), _hex(address_word(CAROL))]]}
        assert _hashes(await result(h, "eth_getLogs", either)) == expect(to_bob, to_carol)
        stored_or_transfer = {**everything, "topics": [[STORED_TOPIC, transfer], [_hex(word(7))]]}
        assert _hashes(await result(h, "eth_getLogs", stored_or_transfer)) == expect(stored)
        from_alice = {**everything, "topics": [None, _hex(address_word(ALICE))]}
        assert _hashes(await result(h, "eth_getLogs", from_alice)) == expect(to_bob, to_carol)

        # Ranges: one block by number, by hash, a window, defaults (latest only), the future.
        bob_block = to_bob["blockNumber"]
        one = await result(h, "eth_getLogs", {"fromBlock": bob_block, "toBlock": bob_block})
        assert _hashes(one) == expect(to_bob)
        assert _hashes(await result(h, "eth_getLogs", {"blockHash": to_bob["blockHash"]})) == expect(to_bob)
        window = {"fromBlock": to_carol["blockNumber"], "toBlock": stored["blockNumber"]}
        assert _hashes(await result(h, "eth_getLogs", window)) == expect(to_carol, stored)
        assert await result(h, "eth_getLogs", {}) == []  # the head holds the failed transfer only
        future = hex(h.node.ledger.height + 10)
        assert await result(h, "eth_getLogs", {"fromBlock": future, "toBlock": future}) == []
        missing = await error(h, "eth_getLogs", {"blockHash": "0x" + "ab" * 32})
        assert missing["code"] == -32000

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_log_queries_past_a_limit_fail_with_limit_exceeded(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)
        token = bytes.fromhex(
            (await alice.send_and_wait(None, token_deploy_data("C", "C", 100)))["contractAddress"][2:]
        )
        for _ in range(2):
            await alice.send_and_wait(token, call_data("transfer(address,uint256)", BOB, 1))
        head = h.node.ledger.height
        wide = await error(h, "eth_getLogs", {"fromBlock": "0x0", "toBlock": hex(head)})
        assert wide["code"] == -32005 and "block range" in wide["message"] and wide["data"] == {"limit": 4}
        window = {"fromBlock": hex(head - 3), "toBlock": hex(head)}  # three transfers' blocks
        many = await error(h, "eth_getLogs", window)
        assert many["code"] == -32005 and "more than 2 results" in many["message"]
        assert len(await result(h, "eth_getLogs", {"fromBlock": hex(head - 1), "toBlock": hex(head)})) == 2
        # Polled filters are bounded too.
        first, second = await result(h, "eth_newBlockFilter"), await result(h, "eth_newFilter", {})
        assert first != second
        assert (await error(h, "eth_newBlockFilter"))["code"] == -32005
        assert await result(h, "eth_uninstallFilter", first) is True
        assert await result(h, "eth_newBlockFilter")

    limits = RpcLimits(log_block_range_max=4, log_results_max=2, filters_max=2)
    run_node(evm_crypto_dir, tmp_path / "net", body, rpc_limits=limits)


def test_filters_report_changes_since_the_last_poll(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)
        token = bytes.fromhex(
            (await alice.send_and_wait(None, token_deploy_data("C", "C", 100)))["contractAddress"][2:]
        )
        blocks = await result(h, "eth_newBlockFilter")
        to_bob = await result(
            h, "eth_newFilter", {"address": _hex(token), "topics": [None, None, _hex(address_word(BOB))]}
        )
        since_earliest = await result(h, "eth_newFilter", {"fromBlock": "earliest", "address": _hex(token)})
        assert await result(h, "eth_getFilterChanges", blocks) == []
        assert await result(h, "eth_getFilterChanges", to_bob) == []
        assert await result(h, "eth_getFilterChanges", since_earliest) == []  # only what is new

        sent = await alice.send_and_wait(token, call_data("transfer(address,uint256)", BOB, 5))
        other = await alice.send_and_wait(token, call_data("transfer(address,uint256)", CAROL, 5))
        new_blocks = await result(h, "eth_getFilterChanges", blocks)
        assert sent["blockHash"] in new_blocks and other["blockHash"] in new_blocks
        assert new_blocks[-1] == "0x" + h.node.ledger.head_hash.hex() and len(set(new_blocks)) == len(
            new_blocks
        )
        assert await result(h, "eth_getFilterChanges", blocks) == []
        changes = await result(h, "eth_getFilterChanges", to_bob)
        assert changes == sent["logs"]
        assert await result(h, "eth_getFilterChanges", to_bob) == []  # reported once
        assert await result(h, "eth_getFilterChanges", since_earliest) == sent["logs"] + other["logs"]
        # eth_getFilterLogs answers the whole query again, from its fromBlock.
        every = await result(h, "eth_getFilterLogs", since_earliest)
        assert len(every) == 3 and every[1:] == sent["logs"] + other["logs"]
        assert (await error(h, "eth_getFilterLogs", blocks))["code"] == -32602

        assert await result(h, "eth_uninstallFilter", to_bob) is True
        assert await result(h, "eth_uninstallFilter", to_bob) is False
        assert (await error(h, "eth_getFilterChanges", to_bob))["code"] == -32000

    run_node(evm_crypto_dir, tmp_path / "net", body)


def test_filters_expire_when_not_polled_and_are_bounded() -> None:
    now = [0.0]
    registry = FilterRegistry(limit=2, idle_s=10.0, clock=lambda: now[0])
    kept, idle = registry.install(None, 1), registry.install(None, 1)
    try:
        registry.install(None, 1)
        raise AssertionError("a third filter was installed")
    except RpcError as exc:
        assert exc.code == -32005
    now[0] = 8.0
    registry.get(kept)  # polled: its idle time restarts
    now[0] = 15.0
    assert registry.get(kept).next_height == 1
    try:
        registry.get(idle)
        raise AssertionError("an idle filter survived")
    except RpcError as exc:
        assert exc.code == -32000 and exc.message == "filter not found"
    assert len(registry) == 1 and registry.install(None, 2)
