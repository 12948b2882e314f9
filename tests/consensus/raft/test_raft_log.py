"""RaftLog against a model that never forgets anything: indexes, terms and block heights."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.consensus.raft_log import RaftLog, SnapshotMeta, entry_key, load_state
from consortia.consensus.raft_messages import Entry, encode_term
from consortia.crypto import ZERO_HASH, sha256
from consortia.types import Block, Header, encode

GENESIS = sha256(b"genesis")


def make_block(height: int, parent: bytes, term: int) -> Block:
    root = sha256(f"{height}/{term}".encode())
    return Block(Header("c", "m", height, parent, 0, "p", root, root, ZERO_HASH, 0, encode_term(term)), [])


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 1), st.integers(0, 2)),
        st.tuples(st.just("truncate"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("compact"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("trim"), st.integers(0, 5), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_log_matches_a_model(
    program: list[tuple[str, int, int]],
) -> None:
    log = RaftLog(SnapshotMeta(0, 0, 0, GENESIS))
    model: list[Entry] = []  # model[i - 1] is the entry at index i, forever
    term = 1
    for op, arg, extra in program:
        if op == "append":
            term += extra
            last = log.last_block()
            assert last is not None
            block = make_block(last[0] + 1, last[1], term) if arg else None
            entry = Entry(term, block)
            log.append([entry])
            del model[log.last_index - 1 :]
            model.append(entry)
        elif op == "truncate":
            index = log.snap.index + arg
            if index <= log.last_index:
                dropped = log.truncate_after(index)
                assert dropped == list(range(index + 1, index + 1 + len(dropped)))
                del model[index:]
                term = max([e.term for e in model] + [term])
        elif op == "compact":
            index = log.snap.index + 1 + arg
            if index <= log.last_index and log.entry(index).block is not None:
                old = log.snap.index
                assert log.compact(index) == list(range(old + 1, index + 1))
                assert log.snap.index == index
        else:
            log.trim(arg)
            assert log.snap.index - log.base.index <= arg or log.base.index == 0
        assert log.base.index <= log.snap.index <= log.last_index == len(model)
        for i in range(log.base.index + 1, log.last_index + 1):
            assert log.entry(i) == model[i - 1]
            assert log.term_at(i) == model[i - 1].term
        assert log.term_at(log.base.index) == (model[log.base.index - 1].term if log.base.index else 0)
        assert log.term_at(log.last_index + 1) is None
        expected_last = next((e.block for e in reversed(model) if e.block is not None), None)
        got = log.last_block()
        assert got == ((expected_last.header.height, expected_last.hash) if expected_last else (0, GENESIS))
        for i, e in enumerate(model, start=1):
            if e.block is not None and i > log.base.index:
                assert log.index_of_height(e.block.header.height) == i


def test_load_state_rebuilds_the_persisted_log() -> None:
    b1 = make_block(1, GENESIS, 1)
    persisted = {
        "raft/snap": encode(SnapshotMeta(1, 1, 0, GENESIS)),
        entry_key(2): encode(Entry(1, b1)),
        entry_key(3): encode(Entry(2)),
    }
    hard, log, stale = load_state(persisted, 0, GENESIS)
    assert (hard.term, hard.vote, stale) == (0, "", [])
    assert (log.snap.index, log.last_index, log.last_term) == (1, 3, 2)
    assert log.index_of_height(1) == 2 and log.last_block() == (1, b1.hash)


def test_a_fresh_node_with_a_synced_ledger_does_not_know_its_anchor() -> None:
    _, log, _ = load_state({}, 5, GENESIS)
    assert not log.anchored and log.last_block() is None and log.last_index == 0
    _, log, _ = load_state({}, 0, GENESIS)
    assert log.anchored and log.last_block() == (0, GENESIS)
