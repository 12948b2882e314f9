import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortia.mempool import DuplicateTransaction, Mempool, MempoolFull, PooledTx, PoolLimits, SenderLimit


def tx(i: int, sender: bytes = b"s", size: int = 10) -> PooledTx:
    return PooledTx(i.to_bytes(32, "big"), b"x" * size, sender)


def test_fifo_order_and_block_limits() -> None:
    pool = Mempool()
    for i in range(10):
        pool.add(tx(i))
    picked = pool.peek(txs_max=4, bytes_max=1000)
    assert [p.tx_id for p in picked] == [tx(i).tx_id for i in range(4)]
    assert len(pool.peek(txs_max=100, bytes_max=35)) == 3
    pool.remove([p.tx_id for p in picked])
    assert len(pool) == 6
    assert pool.peek(1, 1000)[0].tx_id == tx(4).tx_id


def test_duplicate_refused_and_pool_unchanged() -> None:
    pool = Mempool()
    pool.add(tx(1))
    with pytest.raises(DuplicateTransaction):
        pool.add(tx(1))
    assert len(pool) == 1 and pool.size_bytes == 10


def test_count_bytes_and_sender_limits() -> None:
    pool = Mempool(PoolLimits(txs_max=3, bytes_max=25, per_sender_txs_max=2))
    pool.add(tx(1, b"a"))
    pool.add(tx(2, b"a"))
    with pytest.raises(SenderLimit):
        pool.add(tx(3, b"a", size=1))
    with pytest.raises(MempoolFull):
        pool.add(tx(4, b"b", size=10))  # 30 bytes > 25
    pool.add(tx(5, b"b", size=5))
    with pytest.raises(MempoolFull):
        pool.add(tx(6, b"c", size=1))  # 3 txs already
    assert len(pool) == 3


def test_bad_limits_refused() -> None:
    with pytest.raises(ValueError):
        Mempool(PoolLimits(txs_max=0))


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=200))
def test_accounting_matches_model(ops: list[tuple[int, bool]]) -> None:
    pool = Mempool()
    model: dict[int, int] = {}
    for i, add in ops:
        if add:
            if i in model:
                with pytest.raises(DuplicateTransaction):
                    pool.add(tx(i, size=i + 1))
            else:
                pool.add(tx(i, size=i + 1))
                model[i] = i + 1
        else:
            pool.remove([tx(i).tx_id])
            model.pop(i, None)
    assert len(pool) == len(model)
    assert pool.size_bytes == sum(model.values())
    assert [p.tx_id for p in pool.peek(10_000, 10**9)] == [tx(i).tx_id for i in model]
