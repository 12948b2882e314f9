"""Ethereum transactions in the pool: nonce order, gaps that wait, limits, gas budgets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.mempool import (
    AccountQueueFull,
    Mempool,
    NonceGapTooLarge,
    NonceTaken,
    NonceTooLow,
    PooledTx,
    PoolLimits,
)

A, B = b"a" * 20, b"b" * 20


def eth(sender: bytes, nonce: int, gas: int = 21_000, tag: int = 0) -> PooledTx:
    return PooledTx(sender + nonce.to_bytes(8, "big") + tag.to_bytes(4, "big"), b"e" * 10, sender, nonce, gas)


def native(i: int) -> PooledTx:
    return PooledTx(b"n" + i.to_bytes(8, "big"), b"n" * 10, b"cert")


def ids(txs: list[PooledTx]) -> list[bytes]:
    return [t.tx_id for t in txs]


def test_a_gapped_nonce_waits_until_the_gap_closes() -> None:
    pool = Mempool()
    assert pool.next_nonce(A, 0) == 0
    pool.add(eth(A, 1), account_nonce=0)
    assert (pool.ready_count, pool.queued_count) == (0, 1)
    assert pool.peek(100, 10_000) == []
    assert pool.next_nonce(A, 0) == 0
    pool.add(eth(A, 0), account_nonce=0)
    assert (pool.ready_count, pool.queued_count) == (2, 0)
    assert pool.next_nonce(A, 0) == 2
    assert pool.next_nonce(A, 5) == 5  # the account moved on: the pooled nonces are passed
    assert ids(pool.peek(100, 10_000)) == ids([eth(A, 0), eth(A, 1)])


def test_out_of_order_arrival_is_proposed_in_nonce_order_among_others() -> None:
    pool = Mempool()
    pool.add(eth(A, 2))
    pool.add(native(1))
    pool.add(eth(B, 0))
    pool.add(eth(A, 1))
    pool.add(eth(A, 0))
    pool.add(native(2))
    picked = ids(pool.peek(100, 10_000))
    assert picked == ids([native(1), eth(B, 0), eth(A, 0), eth(A, 1), eth(A, 2), native(2)])


def test_block_limits_cut_a_run_and_the_next_block_continues_it() -> None:
    pool = Mempool()
    for n in (3, 2, 1, 0):
        pool.add(eth(A, n))
    first = pool.peek(2, 10_000)
    assert ids(first) == ids([eth(A, 0), eth(A, 1)])
    pool.remove(ids(first))
    assert pool.ready_count == 0  # nonce 2 waits until the pool hears nonces 0-1 were used
    pool.sync_account(A, 2)
    assert ids(pool.peek(10, 10_000)) == ids([eth(A, 2), eth(A, 3)])


def test_gas_budget_leaves_the_rest_for_the_next_block() -> None:
    pool = Mempool()
    pool.add(eth(A, 0, gas=600))
    pool.add(eth(A, 1, gas=700))
    pool.add(eth(B, 0, gas=300))
    pool.add(native(1))
    pool.add(eth(A, 2, gas=100))
    # A's nonce 1 does not fit: nothing more from A (its nonce 2 would leave a gap); B fits.
    assert ids(pool.peek(100, 10_000, gas_max=1000)) == ids([eth(A, 0), eth(B, 0), native(1)])
    # Over the per-transaction cap: taken without counting gas (the executor refuses it),
    # and nothing after it from its sender (its nonce will not have been used).
    assert ids(pool.peek(100, 10_000, gas_max=1000, tx_gas_max=650)) == ids(
        [eth(A, 0), eth(A, 1), eth(B, 0), native(1)]
    )


def test_duplicate_nonce_refused_and_pool_unchanged() -> None:
    pool = Mempool()
    pool.add(eth(A, 0))
    pool.add(eth(A, 3))
    for nonce in (0, 3):
        with pytest.raises(NonceTaken) as err:
            pool.add(eth(A, nonce, tag=1))
        assert err.value.code == "nonce_taken"
    assert (len(pool), pool.ready_count, pool.queued_count) == (2, 1, 1)


def test_nonce_below_the_committed_one_is_refused() -> None:
    pool = Mempool()
    with pytest.raises(NonceTooLow):
        pool.add(eth(A, 4), account_nonce=5)
    assert len(pool) == 0


def test_queued_per_sender_and_nonce_gap_limits() -> None:
    pool = Mempool(PoolLimits(eth_queued_per_sender_max=2, eth_nonce_gap_max=5))
    pool.add(eth(A, 0))
    pool.add(eth(A, 1))  # ready run 0-1: the next nonce is 2
    with pytest.raises(NonceGapTooLarge) as gap:
        pool.add(eth(A, 8))
    assert gap.value.code == "nonce_gap_too_large"
    pool.add(eth(A, 7))  # 5 beyond 2
    pool.add(eth(A, 4))
    with pytest.raises(AccountQueueFull) as full:
        pool.add(eth(A, 5))
    assert full.value.code == "account_queue_full"
    pool.add(eth(A, 2))  # contiguous: never counts as queued
    pool.add(eth(B, 3))  # the limit is per sender
    assert (pool.ready_count, pool.queued_count) == (3, 3)
    pool.add(eth(A, 3))  # closes the gap: 4 joins the run, only 7 still waits
    assert pool.queued_count == 2
    pool.add(eth(A, 6))  # the queue is full again (6, 7), but 5 closes the gap
    pool.add(eth(A, 5))
    assert ids(pool.peek(100, 10_000)) == ids([eth(A, n) for n in range(8)])


def test_passed_nonces_are_dropped_when_the_account_moves() -> None:
    pool = Mempool()
    pool.add(eth(A, 0))
    pool.add(eth(A, 1))
    pool.add(eth(A, 3))
    # Another transaction with nonce 0 and 1 committed elsewhere: ours are stale.
    assert pool.sync_account(A, 2) == ids([eth(A, 0), eth(A, 1)])
    assert (len(pool), pool.ready_count, pool.queued_count) == (1, 0, 1)
    # Learning the account's nonce on admission drops them too, and reports them.
    assert pool.add(eth(A, 4), account_nonce=3) == []
    assert pool.add(eth(A, 5), account_nonce=4) == ids([eth(A, 3)])
    assert ids(pool.peek(10, 10_000)) == ids([eth(A, 4), eth(A, 5)])
    assert pool.sync_account(B, 9) == []


def test_removing_a_ready_nonce_makes_its_successors_wait() -> None:
    pool = Mempool()
    for n in range(3):
        pool.add(eth(A, n))
    pool.remove([eth(A, 1).tx_id])  # e.g. found invalid by a block
    assert (pool.ready_count, pool.queued_count) == (1, 1)
    assert ids(pool.peek(10, 10_000)) == ids([eth(A, 0)])


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from([A, B]), st.integers(0, 12)),
        st.tuples(st.just("commit"), st.sampled_from([A, B]), st.integers(0, 4)),
        st.tuples(st.just("remove"), st.sampled_from([A, B]), st.integers(0, 12)),
    ),
    max_size=60,
)


@given(ops)
def test_ready_and_queued_match_a_model(steps: list[tuple[str, bytes, int]]) -> None:
    limits = PoolLimits(eth_queued_per_sender_max=4, eth_nonce_gap_max=6)
    pool = Mempool(limits)
    committed = {A: 0, B: 0}
    pending: dict[bytes, dict[int, PooledTx]] = {A: {}, B: {}}

    def ready_run(sender: bytes) -> list[int]:
        run, n = [], committed[sender]
        while n in pending[sender]:
            run.append(n)
            n += 1
        return run

    for step, (op, sender, n) in enumerate(steps):
        if op == "add":
            tx = eth(sender, n, tag=step)
            run = ready_run(sender)
            next_nonce = committed[sender] + len(run)
            queued = len(pending[sender]) - len(run)
            try:
                pool.add(tx, committed[sender])
            except NonceTooLow:
                assert n < committed[sender]
            except NonceTaken:
                assert n in pending[sender]
            except NonceGapTooLarge:
                assert n - next_nonce > limits.eth_nonce_gap_max
            except AccountQueueFull:
                assert n != next_nonce and queued >= limits.eth_queued_per_sender_max
            else:
                assert n >= committed[sender] and n not in pending[sender]
                pending[sender][n] = tx
        elif op == "commit":  # n transactions of the ready run commit
            used = ready_run(sender)[:n]
            pool.remove([pending[sender].pop(k).tx_id for k in used])
            committed[sender] += len(used)
            pool.sync_account(sender, committed[sender])
        else:
            tx_found = pending[sender].pop(n, None)
            if tx_found is not None:
                pool.remove([tx_found.tx_id])
        ready = sum(len(ready_run(s)) for s in (A, B))
        assert (len(pool), pool.ready_count) == (sum(map(len, pending.values())), ready)
    picked = pool.peek(1000, 10**9)
    for s in (A, B):
        assert [t.eth_nonce for t in picked if t.sender == s] == ready_run(s)
