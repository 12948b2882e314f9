"""The channel ledger: commit rules, reads, proofs, history and crash recovery."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_kit import CHANNEL, commit, envelope, genesis, make_block, receipts_for, tx_id

from consortia.crypto import ZERO_HASH, merkle_root, sha256
from consortia.ledger import (
    BLOCK_WRITE_INDEX,
    STATE_KEY_BYTES_MAX,
    BodyDigests,
    InvalidBlock,
    InvalidWrite,
    KeyVersion,
    Ledger,
    LedgerCorrupt,
    NotFound,
    StalePrepared,
    StateRootMismatch,
    Write,
    WrongChannel,
    WrongHeight,
    WrongParent,
    verify_state_proof,
    verify_tx_proof,
)
from consortia.ledger.store import BLOCKS_FILE
from consortia.types import BlockSignature, CommitCertificate, Receipt, encode

W = BLOCK_WRITE_INDEX


def w(key: bytes, value: bytes | None, tx_index: int = W) -> Write:
    return Write(key, value, tx_index)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger.open(tmp_path / "ch1", CHANNEL)
    yield led
    led.close()


def snapshot(led: Ledger) -> tuple[object, ...]:
    """Everything a refused commit must leave unchanged."""
    return (
        led.height,
        led.head,
        led.head_hash,
        led.state_root,
        list(led.state.scan(b"", None)),
        os.path.getsize(led.path / BLOCKS_FILE),
        led.prepare([]).root,
    )


def test_empty_ledger(ledger: Ledger) -> None:
    assert ledger.height == -1 and ledger.head is None
    assert ledger.head_hash == ZERO_HASH and ledger.state_root == ZERO_HASH
    assert ledger.block(0) is None and ledger.block(-1) is None
    assert ledger.state.get(b"k") is None and list(ledger.state.scan(b"", None)) == []
    assert verify_state_proof(ZERO_HASH, b"k", None, ledger.prove(b"k"))


def test_genesis_then_blocks_are_readable(ledger: Ledger) -> None:
    g = genesis(ledger, [w(b"c/kv\x00a", b"1"), w(b"c/kv\x00b", b"2")])
    assert ledger.height == 0 and ledger.head == g.header and ledger.head_hash == g.hash
    assert ledger.chain_id == g.header.chain_id
    txs = [envelope(i) for i in range(5)]
    b1 = commit(ledger, [w(b"c/kv\x00a", b"10", 0), w(b"c/kv\x00c", b"3", 4)], txs)
    assert ledger.height == 1 and b1.header.parent_hash == g.hash
    assert ledger.block(0) == g and ledger.block(1) == b1 and ledger.block(2) is None
    assert ledger.block_by_hash(b1.hash) == b1 and ledger.block_by_hash(sha256(b"no")) is None
    assert ledger.block_bytes(1) == msgspec.msgpack.encode(b1)
    for i, raw in enumerate(txs):
        assert ledger.tx_location(tx_id(raw)) == (1, i)
        assert ledger.has_tx(tx_id(raw))
        assert ledger.receipt(tx_id(raw)) == receipts_for(txs)[i]
    assert ledger.tx_location(sha256(b"unknown")) is None and not ledger.has_tx(b"short")
    assert ledger.receipt(sha256(b"unknown")) is None
    assert ledger.state_root == b1.header.state_root


def test_state_last_write_wins_and_scan_is_ordered_end_exclusive(ledger: Ledger) -> None:
    genesis(ledger)
    keys = [b"c/kv\x00" + bytes([i]) for i in (5, 1, 9, 3, 7)]
    commit(ledger, [w(k, b"v" + k[-1:]) for k in keys] + [w(keys[0], b"last"), w(keys[2], None)])
    assert ledger.state.get(keys[0]) == b"last" and ledger.state.get(keys[2]) is None
    scanned = list(ledger.state.scan(b"c/kv\x00\x01", b"c/kv\x00\x07"))
    assert scanned == [(b"c/kv\x00\x01", b"v\x01"), (b"c/kv\x00\x03", b"v\x03"), (b"c/kv\x00\x05", b"last")]
    assert [k for k, _ in ledger.state.scan(b"", None)] == sorted(set(keys) - {keys[2]})
    assert ledger.state.get(b"") is None and ledger.state.get(b"x" * 600) is None


def test_invalid_writes_are_refused(ledger: Ledger) -> None:
    for bad in (w(b"", b"v"), w(b"k" * (STATE_KEY_BYTES_MAX + 1), b"v"), w(b"k", "str"), w(b"k", b"v", -2)):  # type: ignore[arg-type]
        with pytest.raises(InvalidWrite):
            ledger.prepare([bad])
    assert ledger.prepare([w(b"k" * STATE_KEY_BYTES_MAX, b"v")]).root != ZERO_HASH


# ------------------------------------------------------------ refused commits


def refused(ledger: Ledger, exc: type[Exception], **kw: object) -> None:
    before = snapshot(ledger)
    prepared = ledger.prepare([w(b"c/kv\x00z", b"new", 0)])
    txs = kw.pop("txs", [envelope(99)])
    receipts = kw.pop("receipts", None)
    block, rs = make_block(ledger, prepared, txs, receipts, **kw)
    with pytest.raises(exc):
        ledger.commit(block, rs, prepared)
    assert snapshot(ledger) == before
    assert not ledger.has_tx(tx_id(envelope(99)))


@pytest.mark.parametrize(
    ("exc", "kw"),
    [
        (WrongHeight, {"height": 3}),
        (WrongHeight, {"height": 1}),
        (WrongParent, {"parent": sha256(b"elsewhere")}),
        (StateRootMismatch, {"state_root": sha256(b"wrong")}),
        (InvalidBlock, {"tx_root": sha256(b"wrong")}),
        (InvalidBlock, {"tx_count": 2}),
        (InvalidBlock, {"receipts_root": sha256(b"wrong")}),
        (InvalidBlock, {"receipts": []}),
        (InvalidBlock, {"receipts": [Receipt(sha256(b"other"), 0, "", [], 0)]}),
        (
            InvalidBlock,
            {"txs": [b"\x01garbage"], "receipts": [Receipt(sha256(b"\x01garbage"), 0, "", [], 0)]},
        ),
        (InvalidBlock, {"channel": "other"}),
        (InvalidBlock, {"chain_id": "other"}),
    ],
)
def test_bad_block_is_refused_and_nothing_changes(
    ledger: Ledger, exc: type[Exception], kw: dict[str, object]
) -> None:
    genesis(ledger, [w(b"c/kv\x00a", b"1")])
    commit(ledger, [w(b"c/kv\x00b", b"2")])
    refused(ledger, exc, **kw)
    commit(ledger, [w(b"c/kv\x00c", b"3")])  # the ledger still takes the right block
    assert ledger.height == 2


def test_digests_from_the_caller_spare_recomputing_but_must_match_the_header(ledger: Ledger) -> None:
    genesis(ledger)
    txs = [envelope(1), envelope(2)]
    prepared = ledger.prepare([w(b"k", b"1", 1)])
    block, rs = make_block(ledger, prepared, txs)
    right = BodyDigests([tx_id(raw) for raw in txs], merkle_root(txs), merkle_root([encode(r) for r in rs]))
    before = snapshot(ledger)
    for wrong, match in (
        (BodyDigests(right.tx_ids, sha256(b"other"), right.receipts_root), "transactions root"),
        (BodyDigests(right.tx_ids, right.tx_root, sha256(b"other")), "receipts root"),
        (BodyDigests(right.tx_ids[:1], right.tx_root, right.receipts_root), "1 tx ids for 2"),
        (BodyDigests([right.tx_ids[1], right.tx_ids[0]], right.tx_root, right.receipts_root), "another"),
    ):
        with pytest.raises(InvalidBlock, match=match):
            ledger.commit(block, rs, prepared, wrong)
        assert snapshot(ledger) == before
    ledger.commit(block, rs, prepared, right)
    assert ledger.tx_location(tx_id(txs[1])) == (1, 1)
    assert ledger.block_receipts(1) == rs
    assert [v.tx_id for v in ledger.history(b"k")] == [tx_id(txs[1])]


def test_stale_prepared_state_is_refused(ledger: Ledger) -> None:
    genesis(ledger)
    stale = ledger.prepare([w(b"k", b"1")])
    commit(ledger, [w(b"j", b"2")])
    before = snapshot(ledger)
    block, rs = make_block(ledger, stale)
    with pytest.raises(StalePrepared):
        ledger.commit(block, rs, stale)
    assert snapshot(ledger) == before


def test_write_naming_a_missing_transaction_is_refused(ledger: Ledger) -> None:
    genesis(ledger)
    before = snapshot(ledger)
    prepared = ledger.prepare([w(b"k", b"1", 3)])
    block, rs = make_block(ledger, prepared, [envelope(1)])
    with pytest.raises(InvalidBlock, match="transaction 3"):
        ledger.commit(block, rs, prepared)
    assert snapshot(ledger) == before


def test_certificate_for_another_block_is_refused(ledger: Ledger) -> None:
    genesis(ledger)
    prepared = ledger.prepare([])
    block, rs = make_block(ledger, prepared)
    cert = CommitCertificate(1, sha256(b"other"), [BlockSignature(b"cert", b"sig")])
    with pytest.raises(InvalidBlock, match="certificate"):
        ledger.commit(msgspec.structs.replace(block, certificate=cert), rs, prepared)
    good = CommitCertificate(1, block.hash, [BlockSignature(b"cert", b"sig")])
    ledger.commit(msgspec.structs.replace(block, certificate=good), rs, prepared)
    assert ledger.block(1).certificate == good  # type: ignore[union-attr]


def test_initialize_twice_is_refused(ledger: Ledger) -> None:
    genesis(ledger)
    with pytest.raises(WrongHeight):
        genesis(ledger)


def test_genesis_must_have_zero_parent(ledger: Ledger) -> None:
    prepared = ledger.prepare([])
    block, _ = make_block(ledger, prepared, parent=sha256(b"x"))
    with pytest.raises(WrongParent):
        ledger.initialize(block, [])
    assert ledger.height == -1


def test_genesis_carries_data_not_transactions(ledger: Ledger) -> None:
    payload = [b"channel configuration bytes"]
    writes = [w(b"sys/config", b"cfg", 0)]
    prepared = ledger.prepare(writes)
    counted, _ = make_block(ledger, prepared, payload, receipts=[])  # tx_count 1: refused
    with pytest.raises(InvalidBlock, match="counts 1"):
        ledger.initialize(counted, writes)
    block, _ = make_block(ledger, prepared, payload, receipts=[], tx_count=0)
    ledger.initialize(block, writes)
    assert ledger.block(0) == block and not ledger.has_tx(sha256(payload[0]))
    assert ledger.block_receipts(0) == []
    assert ledger.history(b"sys/config") == [KeyVersion(0, 0, b"", b"cfg")]
    # After genesis, a body must be envelopes.
    refused(
        ledger, InvalidBlock, txs=[b"\x01garbage"], receipts=[Receipt(sha256(b"\x01garbage"), 0, "", [], 0)]
    )


def test_replayed_tx_id_keeps_its_first_location_and_receipt(ledger: Ledger) -> None:
    genesis(ledger)
    raw = envelope(7)
    commit(ledger, [], [raw])
    prepared = ledger.prepare([])
    invalid = [Receipt(tx_id(raw), 2, "duplicate", [], 0)]
    block, rs = make_block(ledger, prepared, [raw], invalid)
    ledger.commit(block, rs, prepared)
    assert ledger.tx_location(tx_id(raw)) == (1, 0)
    assert ledger.receipt(tx_id(raw)).status == 0  # type: ignore[union-attr]
    assert ledger.block_receipts(2) == invalid
    assert ledger.block_receipts(1) == receipts_for([raw])
    assert ledger.block_receipts(0) == [] and ledger.block_receipts(3) is None


# -------------------------------------------------------------- proofs


def test_state_proofs_against_the_head_state_root(ledger: Ledger) -> None:
    genesis(ledger, [w(b"c/kv\x00%d" % i, b"v%d" % i) for i in range(50)])
    commit(ledger, [w(b"c/kv\x003", None), w(b"c/kv\x004", b"changed")])
    root = ledger.head.state_root  # type: ignore[union-attr]
    for i in range(50):
        key = b"c/kv\x00%d" % i
        value = ledger.state.get(key)
        proof = ledger.prove(key)
        assert proof.height == 1 and proof.value == value
        assert verify_state_proof(root, key, value, proof)
    assert ledger.state.get(b"c/kv\x003") is None
    assert not verify_state_proof(root, b"c/kv\x004", b"v4", ledger.prove(b"c/kv\x004"))
    for key in (b"c/kv\x00absent", b"", b"x" * 600):
        assert verify_state_proof(root, key, None, ledger.prove(key))


def test_tx_proofs(ledger: Ledger) -> None:
    genesis(ledger)
    txs = [envelope(i) for i in range(7)]
    block = commit(ledger, [], txs)
    for raw in txs:
        proof = ledger.prove_tx(tx_id(raw))
        assert proof.header == block.header and proof.tx_count == 7
        assert verify_tx_proof(block.header.tx_root, raw, proof)
    with pytest.raises(NotFound):
        ledger.prove_tx(sha256(b"unknown"))


# ------------------------------------------------------------- history


def test_history_lists_every_version_newest_first(ledger: Ledger) -> None:
    key, neighbour = b"c/kv\x00acct", b"c/kv\x00acct2"
    genesis(ledger, [w(key, b"0"), w(neighbour, b"n")])
    txs = [envelope(i) for i in range(3)]
    commit(ledger, [w(key, b"1", 0), w(key, b"2", 2)], txs)  # two transactions of one block
    commit(ledger, [w(key, None, 0)], [envelope(10)])
    commit(ledger, [w(key, b"3", 0)], [envelope(11)])
    ids = [tx_id(raw) for raw in txs]
    expected = [
        KeyVersion(3, 0, tx_id(envelope(11)), b"3"),
        KeyVersion(2, 0, tx_id(envelope(10)), None),
        KeyVersion(1, 2, ids[2], b"2"),
        KeyVersion(1, 0, ids[0], b"1"),
        KeyVersion(0, -1, b"", b"0"),
    ]
    assert ledger.history(key, limit=100) == expected
    assert ledger.history(key, limit=2) == expected[:2]
    assert ledger.history(key, limit=0) == []
    assert ledger.history(neighbour) == [KeyVersion(0, -1, b"", b"n")]
    assert ledger.history(b"never written") == []
    assert ledger.history(key[:-1]) == []  # a prefix of a written key is another key


# ------------------------------------------------------ reopen and crashes


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    with Ledger.open(path, CHANNEL) as led:
        genesis(led, [w(b"a", b"1")])
        b1 = commit(led, [w(b"b", b"2", 0)], [envelope(1)])
        state_root, proof = led.state_root, led.prove(b"b")
    with Ledger.open(path, CHANNEL) as led:
        assert led.height == 1 and led.head == b1.header and led.head_hash == b1.hash
        assert led.state_root == state_root and led.chain_id == b1.header.chain_id
        assert led.block(1) == b1 and led.tx_location(tx_id(envelope(1))) == (1, 0)
        assert led.prove(b"b") == proof
        assert led.history(b"b") == [KeyVersion(1, 0, tx_id(envelope(1)), b"2")]
        commit(led, [w(b"c", b"3")])
        assert led.height == 2


def test_crash_between_block_append_and_index_commit(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    led = Ledger.open(path, CHANNEL)
    genesis(led, [w(b"a", b"1")])
    size = os.path.getsize(path / BLOCKS_FILE)
    prepared = led.prepare([w(b"a", b"2")])
    block, rs = make_block(led, prepared)
    # What commit does before its index transaction, then a crash.
    led._blocks.append(block)
    led._blocks.sync()
    led.close()
    assert os.path.getsize(path / BLOCKS_FILE) > size

    led = Ledger.open(path, CHANNEL)
    assert os.path.getsize(path / BLOCKS_FILE) == size
    assert led.height == 0 and led.state.get(b"a") == b"1" and led.block(1) is None
    prepared = led.prepare([w(b"a", b"2")])
    led.commit(block, rs, prepared)  # the same block commits cleanly now
    assert led.block(1) == block
    led.close()


def test_failed_index_transaction_cuts_the_appended_record(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    genesis(ledger)
    before = snapshot(ledger)
    prepared = ledger.prepare([w(b"k", b"v")])
    block, rs = make_block(ledger, prepared)

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ledger, "_write_index", boom)
    with pytest.raises(OSError, match="disk full"):
        ledger.commit(block, rs, prepared)
    assert snapshot(ledger) == before
    monkeypatch.undo()
    ledger.commit(block, rs, prepared)
    assert ledger.block(1) == block


def test_torn_tail_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    with Ledger.open(path, CHANNEL) as led:
        genesis(led)
        b1 = commit(led, [w(b"k", b"v")])
    size = os.path.getsize(path / BLOCKS_FILE)
    with open(path / BLOCKS_FILE, "ab") as f:
        f.write(b"\x00\x00\x10\x00half a record")
    with Ledger.open(path, CHANNEL) as led:
        assert os.path.getsize(path / BLOCKS_FILE) == size
        assert led.block(1) == b1 and led._blocks.scan_end() == size


def test_block_file_shorter_than_the_index_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    with Ledger.open(path, CHANNEL) as led:
        genesis(led)
        commit(led, [])
    size = os.path.getsize(path / BLOCKS_FILE)
    os.truncate(path / BLOCKS_FILE, size - 5)
    with pytest.raises(LedgerCorrupt):
        Ledger.open(path, CHANNEL)


def test_directory_of_another_channel_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ch1"
    Ledger.open(path, CHANNEL).close()
    with pytest.raises(WrongChannel):
        Ledger.open(path, "other")


def test_prepare_on_an_uncommitted_parent(ledger: Ledger) -> None:
    genesis(ledger, [w(b"a", b"1"), w(b"b", b"2")])
    first = ledger.prepare([w(b"a", None), w(b"c", b"3")])
    second = ledger.prepare([w(b"b", b"22"), w(b"c", None)], parent=first)
    b1, r1 = make_block(ledger, first)
    with pytest.raises(StalePrepared):  # out of order
        ledger.commit(make_block(ledger, second)[0], [], second)
    ledger.commit(b1, r1, first)
    b2, r2 = make_block(ledger, second)
    ledger.commit(b2, r2, second)
    assert list(ledger.state.scan(b"", None)) == [(b"b", b"22")]
    # The chained root is the root of the state built directly.
    with Ledger.open(ledger.path.parent / "direct", CHANNEL) as direct:
        genesis(direct, [w(b"b", b"22")])
        assert direct.state_root == ledger.state_root


# ------------------------------------------------------- model check

ops = st.lists(
    st.lists(
        st.tuples(st.sampled_from([b"k%d" % i for i in range(12)]), st.none() | st.binary(max_size=3)),
        max_size=8,
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=15, deadline=None)
@given(blocks=ops)
def test_ledger_matches_a_dict_model(blocks: list[list[tuple[bytes, bytes | None]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp), CHANNEL) as led:
        genesis(led)
        model: dict[bytes, bytes] = {}
        for writes in blocks:
            commit(led, [w(k, v) for k, v in writes])
            for k, v in writes:
                if v is None:
                    model.pop(k, None)
                else:
                    model[k] = v
            assert dict(led.state.scan(b"", None)) == model
            assert [k for k, _ in led.state.scan(b"", None)] == sorted(model)
        for i in range(12):
            key = b"k%d" % i
            assert verify_state_proof(led.state_root, key, model.get(key), led.prove(key))
        # The root depends only on the final state.
        with tempfile.TemporaryDirectory() as tmp2, Ledger.open(Path(tmp2), CHANNEL) as fresh:
            genesis(fresh, [w(k, v) for k, v in sorted(model.items())])
            assert fresh.state_root == led.state_root
