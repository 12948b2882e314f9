"""Batch signature verification spread over the host's cores.

PyNaCl (Ed25519) and coincurve (secp256k1) release the GIL inside their C calls, so a
thread pool scales across cores without the cost of shipping transactions to worker
processes. A batch is split into one chunk per worker; results keep the input order.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

from consortia.crypto.suites import suite_by_name


class VerifyJob(NamedTuple):
    suite: str
    public_key: bytes
    message: bytes
    signature: bytes


def _verify_chunk(jobs: list[VerifyJob]) -> list[bool]:
    out: list[bool] = []
    for job in jobs:
        suite = suite_by_name(job.suite)
        out.append(suite.verify(job.public_key, job.message, job.signature))
    return out


class BatchVerifier:
    """Verifies many signatures at once on `workers` threads (default: one per core)."""

    # Below this size the thread hand-off costs more than it saves.
    parallel_jobs_min = 64

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="verify")

    def verify(self, jobs: list[VerifyJob]) -> list[bool]:
        """Verify on the calling thread and the pool together; blocks until done."""
        if len(jobs) < self.parallel_jobs_min or self.workers == 1:
            return _verify_chunk(jobs)
        results: list[bool] = []
        for part in self._pool.map(_verify_chunk, self._chunks(jobs)):
            results.extend(part)
        return results

    def submit(self, jobs: list[VerifyJob]) -> list[Future[list[bool]]]:
        """Start verifying on the pool without waiting: one future per chunk, in job order
        (an event loop awaits them instead of parking a thread that waits for the pool)."""
        if not jobs:
            return []
        if len(jobs) < self.parallel_jobs_min:
            return [self._pool.submit(_verify_chunk, jobs)]
        return [self._pool.submit(_verify_chunk, chunk) for chunk in self._chunks(jobs)]

    def _chunks(self, jobs: list[VerifyJob]) -> list[list[VerifyJob]]:
        size = -(-len(jobs) // self.workers)
        return [jobs[i : i + size] for i in range(0, len(jobs), size)]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
