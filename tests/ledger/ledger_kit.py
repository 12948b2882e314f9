"""Builders shared by the ledger tests: envelopes, blocks, an in-memory node store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consortia.crypto import merkle_root
from consortia.ledger import Ledger, PreparedState, SmtUpdate, Write
from consortia.types import Block, Envelope, Header, Receipt, Transaction, encode

CHAIN = "test-chain"
CHANNEL = "ch1"


def envelope(n: int, method: str = "put") -> bytes:
    tx = Transaction(CHAIN, CHANNEL, n.to_bytes(8, "big"), b"cert", "kv", method, [n])
    return encode(Envelope(encode(tx), b"sig" * 20))


def tx_id(raw: bytes) -> bytes:
    from consortia.types import decode_canonical

    return decode_canonical(raw, Envelope).tx_id


def receipts_for(txs: Sequence[bytes]) -> list[Receipt]:
    return [Receipt(tx_id(raw), 0, "", [], 7, result=i) for i, raw in enumerate(txs)]


def make_block(
    ledger: Ledger,
    prepared: PreparedState,
    txs: Sequence[bytes] = (),
    receipts: Sequence[Receipt] | None = None,
    height: int | None = None,
    parent: bytes | None = None,
    **header_fields: Any,
) -> tuple[Block, list[Receipt]]:
    """The next block over `prepared`, with consistent roots unless overridden."""
    rs = receipts_for(txs) if receipts is None else list(receipts)
    fields: dict[str, Any] = {
        "chain_id": CHAIN,
        "channel": CHANNEL,
        "height": ledger.height + 1 if height is None else height,
        "parent_hash": ledger.head_hash if parent is None else parent,
        "timestamp_ms": 1_700_000_000_000 + ledger.height + 1,
        "proposer": "node0",
        "tx_root": merkle_root(list(txs)),
        "state_root": prepared.root,
        "receipts_root": merkle_root([encode(r) for r in rs]),
        "tx_count": len(txs),
    }
    fields.update(header_fields)
    return Block(Header(**fields), list(txs)), rs


def commit(ledger: Ledger, writes: Sequence[Write], txs: Sequence[bytes] = ()) -> Block:
    prepared = ledger.prepare(writes)
    block, receipts = make_block(ledger, prepared, txs)
    ledger.commit(block, receipts, prepared)
    return block


def genesis(ledger: Ledger, writes: Sequence[Write] = ()) -> Block:
    prepared = ledger.prepare(writes)
    block, _ = make_block(ledger, prepared)
    ledger.initialize(block, writes)
    return block


class MemoryNodes:
    """A dict standing in for the tree's node database."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.nodes.get(key)

    def apply(self, update: SmtUpdate) -> None:
        for key, node in update.nodes.items():
            if node is None:
                del self.nodes[key]  # a delete of a node that is not there is a bug
            else:
                self.nodes[key] = node
