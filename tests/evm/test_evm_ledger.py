"""EVM state through the real ledger: committed durably, under the state root, provable."""

from __future__ import annotations

from pathlib import Path

from consortia.crypto import merkle_root
from consortia.execution.evm.layout import read_storage, storage_key
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.execution.genesis import genesis_writes
from consortia.ledger import Ledger, verify_state_proof, verify_tx_proof
from consortia.types import STATUS_INVALID, STATUS_OK, Block, Header, encode
from consortia.types.eth import decode_eth_transaction, sign_eth_transaction

from .evm_kit import (
    ALICE,
    ALICE_KEY,
    BOB,
    CHAIN_ID,
    CHANNEL,
    ETH_CHAIN_ID,
    FakeValidator,
    balance_slot,
    call_data,
    make_config,
    permit_writes,
    token_deploy_data,
)

T0_MS = 1_700_000_000_000


class LedgerChain:
    """Executes blocks on a real Ledger and commits them, building headers as a proposer does."""

    def __init__(self, path: Path, permitted: tuple[bytes, ...]) -> None:
        self.config = make_config()
        self.ledger = Ledger.open(path, CHANNEL)
        writes = [*genesis_writes(self.config), *permit_writes(*permitted)]
        prepared = self.ledger.prepare(writes)
        self.ledger.initialize(self._block(0, prepared.root, [encode(self.config)], []), writes)
        self.executor = Executor(FakeValidator)
        self.nonce = 0

    def _block(self, height: int, state_root: bytes, txs: list[bytes], receipts: list[bytes]) -> Block:
        header = Header(
            chain_id=CHAIN_ID,
            channel=CHANNEL,
            height=height,
            parent_hash=self.ledger.head_hash,
            timestamp_ms=T0_MS + height,
            proposer="node0",
            tx_root=merkle_root(txs),
            state_root=state_root,
            receipts_root=merkle_root(receipts),
            tx_count=0 if height == 0 else len(txs),
        )
        return Block(header, txs)

    def sign(self, to: bytes | None, data: bytes) -> bytes:
        raw = sign_eth_transaction(
            ALICE_KEY, chain_id=ETH_CHAIN_ID, nonce=self.nonce, gas=1_000_000, to=to, data=data
        )
        self.nonce += 1
        return raw

    def run(self, *raws: bytes) -> tuple[Block, BlockOutcome]:
        height = self.ledger.height + 1
        inputs = []
        for raw in raws:
            tx = decode_eth_transaction(raw)
            inputs.append(TxInput(tx.hash, tx))
        outcome = self.executor.execute_block(
            self.ledger.state, self.config, height, T0_MS + height, inputs, self.ledger.has_tx
        )
        prepared = self.ledger.prepare(outcome.writes)
        block = self._block(height, prepared.root, list(raws), [encode(r) for r in outcome.receipts])
        self.ledger.commit(block, outcome.receipts, prepared)
        return block, outcome


def test_evm_storage_is_committed_under_the_state_root_and_provable(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger", permitted=(ALICE,))
    with chain.ledger as ledger:
        root0 = ledger.state_root
        _, outcome = chain.run(chain.sign(None, token_deploy_data("T", "T", 1_000)))
        receipt = outcome.receipts[0]
        assert receipt.status == STATUS_OK, receipt.error
        token = receipt.result["contract_address"]
        root1 = ledger.state_root
        assert root1 != root0

        raw = chain.sign(token, call_data("transfer(address,uint256)", BOB, 42))
        block, outcome = chain.run(raw)
        assert outcome.receipts[0].status == STATUS_OK
        root = ledger.state_root
        assert root != root1

        # The slot of balanceOf[BOB] is proven against the committed state root.
        key = storage_key(token, balance_slot(BOB))
        value = ledger.state.get(key)
        assert value == (42).to_bytes(1, "big")
        assert read_storage(ledger.state, token, balance_slot(BOB)) == 42
        proof = ledger.prove(key)
        assert verify_state_proof(root, key, value, proof)
        assert not verify_state_proof(root, key, (43).to_bytes(1, "big"), proof)
        assert not verify_state_proof(root1, key, value, proof)
        # An untouched slot's absence is provable too.
        empty = storage_key(token, balance_slot(b"\x07" * 20))
        assert verify_state_proof(root, empty, None, ledger.prove(empty))

        # The ledger indexes the transaction by its Ethereum hash and proves its inclusion.
        tx_hash = decode_eth_transaction(raw).hash
        assert ledger.tx_location(tx_hash) == (2, 0)
        stored = ledger.receipt(tx_hash)
        assert stored == outcome.receipts[0]
        assert verify_tx_proof(block.header.tx_root, raw, ledger.prove_tx(tx_hash))
        assert [(v.height, v.tx_id) for v in ledger.history(key)] == [(2, tx_hash)]


def test_state_survives_reopening_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    chain = LedgerChain(path, permitted=(ALICE,))
    with chain.ledger:
        _, outcome = chain.run(chain.sign(None, token_deploy_data("T", "T", 1_000)))
        token = outcome.receipts[0].result["contract_address"]
        chain.run(chain.sign(token, call_data("transfer(address,uint256)", BOB, 5)))
        root = chain.ledger.state_root
    with Ledger.open(path, CHANNEL) as reopened:
        assert reopened.state_root == root
        assert read_storage(reopened.state, token, balance_slot(BOB)) == 5
        result = Executor(FakeValidator).eth_call(
            reopened.state, make_config(), 3, T0_MS, ALICE, token, call_data("balanceOf(address)", ALICE)
        )
        assert int.from_bytes(result.output, "big") == 995


def test_an_unpermitted_sender_leaves_the_state_root_alone(tmp_path: Path) -> None:
    chain = LedgerChain(tmp_path / "ledger", permitted=())
    with chain.ledger as ledger:
        root0 = ledger.state_root
        _, outcome = chain.run(chain.sign(None, token_deploy_data("T", "T", 1_000)))
        assert outcome.receipts[0].status == STATUS_INVALID
        assert outcome.writes == []
        assert ledger.state_root == root0
        assert ledger.height == 1  # the block is committed, with the invalid receipt
