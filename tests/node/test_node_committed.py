"""The in-memory replay filter: exact answers, and ids learnt from the ledger's index."""

from __future__ import annotations

import random

from consortia.crypto import sha256
from consortia.node.committed import CommittedTxIds


def test_ids_learnt_as_index_prefixes_are_found_by_their_full_ids() -> None:
    """The ledger's tx index yields 8-byte prefixes of the ids (Ledger.tx_ids); a node that
    restarts fills its filter from them and must still refuse every committed id."""
    ids = [sha256(i.to_bytes(4, "big")) for i in range(5_000)]
    committed = set(ids)
    asked: list[bytes] = []

    def lookup(tx_id: bytes) -> bool:
        asked.append(tx_id)
        return tx_id in committed

    filter_ = CommittedTxIds(lookup, (tx_id[:8] for tx_id in ids), recent_max=16, first_capacity=1_000)
    assert filter_.filter_layers == 3
    assert all(tx_id in filter_ for tx_id in ids)
    assert asked == ids  # each committed id was confirmed by the ledger
    rng = random.Random(5)
    fresh = [rng.randbytes(32) for _ in range(5_000)]
    assert not any(tx_id in filter_ for tx_id in fresh)
    assert len(asked) - len(ids) < 100  # false positives are rare (and answered exactly)


def test_recent_ids_answer_without_the_ledger() -> None:
    filter_ = CommittedTxIds(lambda _: False, recent_max=2)
    filter_.add_committed([b"a" * 32, b"b" * 32, b"c" * 32])
    assert b"c" * 32 in filter_ and b"b" * 32 in filter_
    assert filter_.ledger_lookups == 0
    assert b"a" * 32 not in filter_  # evicted from the recent set; the ledger says no
    assert filter_.ledger_lookups == 1
    assert b"short" not in filter_  # not an id at all, but still a plain answer
