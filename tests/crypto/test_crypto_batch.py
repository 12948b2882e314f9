"""BatchVerifier: worker processes for Ed25519, started lazily, gone with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from consortia.crypto import ED25519, SECP256K1, BatchVerifier, VerifyJob
from consortia.crypto.batch import _ERROR, _FRAME, VerifierError, _answer, _encode_jobs

SRC = str(Path(__file__).resolve().parents[2] / "src")


def ed_jobs(count: int, bad: tuple[int, ...] = ()) -> list[VerifyJob]:
    key = ED25519.generate()
    jobs = [VerifyJob("ed25519", key.public_key, b"%d" % i, key.sign(b"%d" % i)) for i in range(count)]
    for i in bad:
        jobs[i] = jobs[i]._replace(message=b"forged")
    return jobs


def worker_pids(verifier: BatchVerifier) -> list[int]:
    pool = verifier._procs
    return [] if pool is None else [w._proc.pid for w in pool._workers]


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for whoever adopted it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(condition: object, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_submit_keeps_job_order_across_chunks() -> None:
    jobs = ed_jobs(700, bad=(0, 333, 699))
    verifier = BatchVerifier(2)
    try:
        parts = verifier.submit(jobs)
        assert len(parts) == 3  # 700 jobs in chunks of at most chunk_jobs_max
        results = [ok for part in parts for ok in part.result()]
    finally:
        verifier.close()
    assert [i for i, ok in enumerate(results) if not ok] == [0, 333, 699]


def test_workers_start_lazily_and_small_batches_stay_inline() -> None:
    verifier = BatchVerifier(2)
    try:
        assert worker_pids(verifier) == []
        assert verifier.verify(ed_jobs(verifier.parallel_jobs_min - 1)) == [True] * (
            verifier.parallel_jobs_min - 1
        )
        [done] = verifier.submit(ed_jobs(1, bad=(0,)))
        assert done.done() and done.result() == [False]
        assert worker_pids(verifier) == []
        assert verifier.verify([]) == [] and verifier.submit([]) == []
    finally:
        verifier.close()


def test_start_brings_the_workers_up_before_any_batch() -> None:
    verifier = BatchVerifier(2)
    try:
        verifier.start()
        pids = worker_pids(verifier)
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
        assert verifier.verify(ed_jobs(300, bad=(7,))) == [i != 7 for i in range(300)]
        assert worker_pids(verifier) == pids  # the batch used the started workers
    finally:
        verifier.close()
    inline = BatchVerifier(0)
    inline.start()
    assert worker_pids(inline) == []
    inline.close()
    with pytest.raises(RuntimeError):
        verifier.start()


def test_inline_mode_starts_no_process() -> None:
    verifier = BatchVerifier(0)
    parts = verifier.submit(ed_jobs(300, bad=(5,)))
    assert len(parts) == 1 and parts[0].done()
    assert parts[0].result() == [i != 5 for i in range(300)]
    assert worker_pids(verifier) == []
    verifier.close()


def test_close_stops_the_workers_after_answering() -> None:
    verifier = BatchVerifier(2)
    futures = verifier.submit(ed_jobs(600))
    pids = worker_pids(verifier)
    assert len(pids) == 2
    verifier.close()
    assert all(f.done() for f in futures)
    assert [ok for f in futures for ok in f.result()] == [True] * 600
    assert wait_until(lambda: all(gone(pid) for pid in pids))
    with pytest.raises(RuntimeError):
        verifier.submit(ed_jobs(100))


def test_a_killed_worker_fails_its_chunk_and_is_replaced() -> None:
    verifier = BatchVerifier(1)
    verifier.chunk_jobs_max = 10_000
    try:
        verifier.verify(ed_jobs(8))
        [pid] = worker_pids(verifier)
        [future] = verifier.submit(ed_jobs(3_000))  # ~0.2 s of work for one worker
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(VerifierError):
            future.result(timeout=60)
        assert verifier.verify(ed_jobs(50, bad=(7,))) == [i != 7 for i in range(50)]
        assert worker_pids(verifier) != [pid]
    finally:
        verifier.close()


def test_workers_exit_when_the_parent_is_killed() -> None:
    script = (
        "import time\n"
        "from consortia.crypto import ED25519, BatchVerifier, VerifyJob\n"
        "k = ED25519.generate()\n"
        "v = BatchVerifier(2)\n"
        "assert all(v.verify([VerifyJob('ed25519', k.public_key, b'm', k.sign(b'm'))] * 64))\n"
        "print(*[w._proc.pid for w in v._procs._workers], flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: all(gone(pid) for pid in pids))


def test_other_suites_run_on_threads() -> None:
    key = SECP256K1.generate()
    jobs = [VerifyJob("secp256k1", key.public_key, b"%d" % i, key.sign(b"%d" % i)) for i in range(80)]
    jobs[3] = jobs[3]._replace(signature=bytes(64))
    verifier = BatchVerifier(2)
    try:
        assert verifier.verify(jobs) == [i != 3 for i in range(80)]
        assert worker_pids(verifier) == []
    finally:
        verifier.close()


def test_a_worker_reports_bad_input_instead_of_dying() -> None:
    for payload in (b"\xc1not msgpack", _encode_jobs([VerifyJob("secp256k1", b"k", b"m", b"s")])):
        (size,) = _FRAME.unpack(_answer(payload)[: _FRAME.size])
        assert size & _ERROR
    ok = _answer(_encode_jobs(ed_jobs(3, bad=(1,))))
    assert ok == _FRAME.pack(3) + bytes([1, 0, 1])


def test_futures_are_plain_concurrent_futures() -> None:
    verifier = BatchVerifier(2)
    try:
        parts = verifier.submit(ed_jobs(100))
        assert all(isinstance(p, Future) for p in parts)
        assert not parts[0].cancel()  # a chunk sent to a worker cannot be taken back
        assert [ok for p in parts for ok in p.result()] == [True] * 100
    finally:
        verifier.close()
