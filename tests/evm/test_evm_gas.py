"""EVM gas limits: the per-block budget and the per-transaction cap, in the executor, the
channel config and the node's block builder."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from consortia.execution.contract import ContractError
from consortia.execution.evm.layout import read_account
from consortia.execution.evm.outcome import (
    BLOCK_GAS_LIMIT,
    TX_GAS_MAX,
    block_gas_limit,
    tx_gas_limit,
)
from consortia.execution.system.config import apply_update
from consortia.types import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    BlockLimits,
    ChannelConfig,
    decode,
    encode,
)
from consortia.types.eth import eth_chain_id, keccak256, sign_eth_transaction
from tests.node.conftest import Harness, run_node

from .evm_kit import ALICE, ALICE_KEY, BOB, BOB_KEY, PROBE_CODE, EvmChain, call_data, make_config
from .node_kit import permit, submit
from .test_evm_pool import committed, position

# Init code that returns the GASLIMIT word: GASLIMIT PUSH0 MSTORE PUSH1 32 PUSH0 RETURN.
GASLIMIT_INIT = bytes.fromhex("455f5260205ff3")


def limited(chain: EvmChain, block_gas: int, tx_gas: int) -> EvmChain:
    block = msgspec.structs.replace(chain.config.block, evm_gas_max=block_gas, evm_tx_gas_max=tx_gas)
    chain.config = msgspec.structs.replace(chain.config, block=block)
    return chain


def test_defaults_and_the_helpers() -> None:
    config = make_config()
    assert block_gas_limit(config) == config.block.evm_gas_max == 2_500_000
    assert tx_gas_limit(config) == config.block.evm_tx_gas_max == 2_500_000
    assert (BLOCK_GAS_LIMIT, TX_GAS_MAX) == (30_000_000, 30_000_000)  # ceilings a config may set
    odd = msgspec.structs.replace(config, block=BlockLimits(evm_gas_max=50_000, evm_tx_gas_max=90_000))
    assert tx_gas_limit(odd) == 50_000  # never more than a block may hold


def test_block_budget_makes_later_txs_invalid_without_using_their_nonce() -> None:
    chain = limited(EvmChain(), block_gas=100_000, tx_gas=60_000)
    txs = [
        chain.eth(ALICE_KEY, BOB, gas=60_000),  # uses 21,000: 79,000 left
        chain.eth(ALICE_KEY, BOB, gas=60_000),  # uses 21,000: 58,000 left
        chain.eth(ALICE_KEY, BOB, gas=60_000),  # asks more than is left
        chain.eth(BOB_KEY, BOB, gas=60_001),  # over the per-transaction cap
        chain.eth(BOB_KEY, BOB, nonce=0, gas=30_000),  # fits what is left
    ]
    outcome = chain.run(*txs)
    statuses = [(r.status, r.steps) for r in outcome.receipts]
    assert statuses == [
        (STATUS_OK, 21_000),
        (STATUS_OK, 21_000),
        (STATUS_INVALID, 0),
        (STATUS_INVALID, 0),
        (STATUS_OK, 21_000),
    ]
    assert (
        outcome.receipts[2].error == "block gas limit reached: 58000 of 100000 left, transaction asks 60000"
    )
    assert outcome.receipts[3].error == "gas limit 60001 exceeds the maximum of 60000"
    assert outcome.eth_senders == tuple(sorted([ALICE, BOB]))
    assert read_account(chain.state, ALICE).nonce == 2
    # The refused nonce is still free: another transaction (the refused one is in the
    # ledger now, a replay) uses it in the next block.
    again = chain.run(chain.eth(ALICE_KEY, BOB, nonce=2, gas=50_000)).receipts[0]
    assert again.status == STATUS_OK


def test_the_gas_check_is_deterministic() -> None:
    """Same block, fresh executors and states: byte-identical receipts and writes."""

    def run() -> bytes:
        chain = limited(EvmChain(), block_gas=300_000, tx_gas=250_000)
        probe = chain.run(chain.eth(ALICE_KEY, None, PROBE_CODE, gas=250_000)).receipts[0]
        address = probe.result["contract_address"]
        outcome = chain.run(
            chain.eth(ALICE_KEY, address, call_data("spin()"), gas=200_000),  # burns all 200,000
            chain.eth(ALICE_KEY, address, call_data("store(uint256,uint256)", 1, 2), gas=150_000),
            chain.eth(BOB_KEY, BOB, gas=21_000),
        )
        assert [r.status for r in outcome.receipts] == [STATUS_FAILED, STATUS_INVALID, STATUS_OK]
        return encode([outcome.receipts, outcome.writes])

    assert run() == run()


def test_endless_loop_and_eth_call_stop_at_the_channel_cap() -> None:
    chain = limited(EvmChain(), block_gas=400_000, tx_gas=250_000)
    address = chain.run(chain.eth(ALICE_KEY, None, PROBE_CODE, gas=250_000)).receipts[0]
    assert address.status == STATUS_OK, address.error
    probe = address.result["contract_address"]
    outcome = chain.call(probe, call_data("spin()"))
    assert (outcome.status, outcome.error, outcome.gas_used) == (STATUS_FAILED, "out of gas", 250_000)
    # GASLIMIT shows the channel's block gas limit.
    shown = chain.executor.eth_call(
        chain.state, chain.config, chain.height, chain.now_ms, ALICE, None, GASLIMIT_INIT
    )
    assert int.from_bytes(shown.output, "big") == 400_000


def test_set_block_limits_changes_the_gas_limits() -> None:
    config = make_config()
    changed = apply_update(
        config, {"op": "set_block_limits", "evm_gas_max": 5_000_000, "evm_tx_gas_max": 4_000_000}
    )
    assert (changed.block.evm_gas_max, changed.block.evm_tx_gas_max) == (5_000_000, 4_000_000)
    assert changed.block.txs_max == config.block.txs_max and changed.sequence == config.sequence + 1
    bad: list[dict[str, int | bool]] = [
        {"evm_tx_gas_max": 3_000_000},  # above the block's 2,500,000
        {"evm_gas_max": 20_999},
        {"evm_gas_max": BLOCK_GAS_LIMIT + 1},
        {"evm_tx_gas_max": True},
    ]
    for fields in bad:
        with pytest.raises(ContractError):
            apply_update(config, {"op": "set_block_limits", **fields})


def test_configs_encoded_before_the_gas_fields_still_decode() -> None:
    class OldLimits(msgspec.Struct, array_like=True, frozen=True):
        txs_max: int = 2000
        bytes_max: int = 8 * 1024 * 1024
        wait_ms: int = 50

    old = decode(encode(OldLimits(10, 20, 30)), BlockLimits)
    assert old == BlockLimits(10, 20, 30)
    assert old.evm_gas_max == BlockLimits().evm_gas_max
    assert decode(encode(make_config()), ChannelConfig) == make_config()


def test_node_splits_txs_across_blocks_by_gas_and_refuses_over_cap(
    evm_crypto_dir: Path, tmp_path: Path
) -> None:
    async def body(h: Harness) -> None:
        await permit(h, ALICE, "org1")
        update = {"op": "set_block_limits", "evm_gas_max": 100_000, "evm_tx_gas_max": 60_000}
        pid = (await h.invoke(h.who("org1", "admin@org1"), "config", "propose", update))["receipt"]["result"]
        for approver in ("org2", "org3"):
            await h.invoke(h.who(approver, f"admin@{approver}"), "config", "approve", pid)
        assert block_gas_limit(h.node.config) == 100_000
        chain_id = eth_chain_id(h.node.config.chain_id, h.node.config.channel)

        def sign(nonce: int, gas: int) -> bytes:
            return sign_eth_transaction(ALICE_KEY, chain_id=chain_id, nonce=nonce, gas=gas, to=BOB)

        resp = await submit(h, sign(0, 60_001), wait=False)
        assert (resp.status_code, resp.json()["error"]["code"]) == (400, "gas_limit"), resp.text
        # Nonces 4..1 wait for nonce 0; then all five are ready at once, 60,000 gas each:
        # only one fits a 100,000 budget, so they go into five blocks, in nonce order.
        raws = [sign(n, 60_000) for n in range(5)]
        for raw in reversed(raws):
            assert (await submit(h, raw, wait=False)).status_code == 200
        infos = await committed(h, raws)
        assert all(i.receipt.status == STATUS_OK for i in infos), [i.receipt.error for i in infos]
        heights = [position(i)[0] for i in infos]
        assert heights == sorted(set(heights)) and len(heights) == 5
        assert h.node.ledger.block(heights[0]) is not None
        for height in heights:
            block = h.node.ledger.block(height)
            assert block is not None
            assert [keccak256(t) for t in block.txs] == [keccak256(raws[heights.index(height)])]

    run_node(evm_crypto_dir, tmp_path / "net", body)
