"""Ed25519 batch verification: the previous backend against the current one.

Not a test (no timing assertions): run it to re-measure on a host, e.g.

    PYTHONPATH=src:. python -m tests.crypto.bench_verify

    previous   PyNaCl (libsodium) on a pool of one thread per core, a batch split into one
               chunk per thread (PyNaCl releases the GIL)
    current    `BatchVerifier()`: ed25519-zebra in one worker process per core

For batches of 64, 500 and 2,000 signatures it prints verifications per wall second and
the CPU the calling process spends per job (`time.process_time`, all its threads, not the
workers'): that process is the node, whose event loop and commit thread the verification
must leave free. Then the small-batch cutoff: the caller's CPU per batch when a batch
goes to a worker against verifying it inline, which sets `BatchVerifier.parallel_jobs_min`.
Medians of ROUNDS runs.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import nacl.signing

from consortia.crypto import ED25519, BatchVerifier, VerifyJob
from consortia.crypto.suites import ed25519_verify

ROUNDS = 3
JOBS_PER_ROUND = 8_000  # per batch size: enough batches that start-up noise washes out
BATCHES = (64, 500, 2_000)
SMALL = (1, 2, 4, 8, 16, 32)
KEYS = 64


def make_jobs(count: int) -> list[VerifyJob]:
    keys = [ED25519.generate() for _ in range(KEYS)]
    jobs = []
    for i in range(count):
        key = keys[i % KEYS]
        message = b"consortia/tx\x00" + i.to_bytes(32, "big")  # the shape of tx signing bytes
        jobs.append(VerifyJob("ed25519", key.public_key, message, key.sign(message)))
    return jobs


def _pynacl_chunk(jobs: list[VerifyJob]) -> list[bool]:
    out = []
    for job in jobs:
        try:
            nacl.signing.VerifyKey(job.public_key).verify(job.message, job.signature)
            out.append(True)
        except Exception:
            out.append(False)
    return out


class PyNaclThreads:
    """The previous `BatchVerifier`: PyNaCl on one thread per core, one chunk per thread."""

    def __init__(self) -> None:
        self.workers = os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self.workers)

    def verify(self, jobs: list[VerifyJob]) -> list[bool]:
        size = -(-len(jobs) // self.workers)
        results: list[bool] = []
        for part in self._pool.map(_pynacl_chunk, [jobs[i : i + size] for i in range(0, len(jobs), size)]):
            results.extend(part)
        return results

    def close(self) -> None:
        self._pool.shutdown()


def measure(verify: Callable[[list[VerifyJob]], list[bool]], batch: list[VerifyJob]) -> tuple[float, float]:
    """(verifications per wall second, caller CPU µs per job) over JOBS_PER_ROUND jobs."""
    rounds = max(1, JOBS_PER_ROUND // len(batch))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        if not all(verify(batch)):
            raise SystemExit("a valid signature failed to verify")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    jobs = rounds * len(batch)
    return jobs / wall, cpu / jobs * 1e6


def median_of(verify: Callable[[list[VerifyJob]], list[bool]], batch: list[VerifyJob]) -> tuple[float, float]:
    runs = [measure(verify, batch) for _ in range(ROUNDS)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def one_core(jobs: list[VerifyJob]) -> None:
    for name, check in (
        ("pynacl", lambda j: _pynacl_chunk([j])[0]),
        ("zebra (ed25519_verify)", lambda j: ed25519_verify(j.public_key, j.message, j.signature)),
    ):
        runs = []
        for _ in range(ROUNDS):
            cpu = time.process_time()
            for job in jobs:
                check(job)
            runs.append((time.process_time() - cpu) / len(jobs) * 1e6)
        print(f"  {name:24} {statistics.median(runs):6.1f} µs per verification on one core")


def batches(jobs: list[VerifyJob]) -> None:
    print(f"  {'batch':>6}  {'backend':10} {'verif/s':>9}  {'caller CPU µs/job':>18}")
    previous, current = PyNaclThreads(), BatchVerifier()
    try:
        current.verify(jobs[:64])  # start the workers outside the measurement
        for size in BATCHES:
            batch = jobs[:size]
            for name, backend in (("previous", previous), ("current", current)):
                rate, cpu = median_of(backend.verify, batch)
                print(f"  {size:>6}  {name:10} {rate:9,.0f}  {cpu:18.2f}")
    finally:
        previous.close()
        current.close()


def cutoff(jobs: list[VerifyJob]) -> None:
    print(f"  {'batch':>6}  {'inline µs/batch':>15}  {'to a worker µs/batch':>20}  (caller CPU)")
    shipped = BatchVerifier(1)
    shipped.parallel_jobs_min = 1
    inline = BatchVerifier(0)
    try:
        shipped.verify(jobs[:1])
        for size in SMALL:
            batch = jobs[:size]
            _, cpu_inline = median_of(inline.verify, batch)
            _, cpu_shipped = median_of(shipped.verify, batch)
            print(f"  {size:>6}  {cpu_inline * size:15.1f}  {cpu_shipped * size:20.1f}")
    finally:
        shipped.close()


def main() -> None:
    jobs = make_jobs(max(BATCHES))
    print(f"Ed25519 verification, {os.cpu_count()} cores, medians of {ROUNDS}")
    one_core(jobs[:2_000])
    batches(jobs)
    cutoff(jobs)


if __name__ == "__main__":
    main()
