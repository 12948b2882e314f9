"""Batch signature verification off the node's busy process.

Ed25519 (every channel's default suite) is verified by ed25519-zebra, which holds the GIL
for each ~60 µs check: threads would neither scale nor leave the event loop and the
commit thread free. So batches of Ed25519 jobs are verified in worker processes, one per
core by default, started on first use with `python -c` (a fresh interpreter: the node's
threads are never forked). A batch is split into chunks; each travels as one msgpack frame
over the stdin of the worker with the fewest jobs outstanding, and its results (one byte
per job) come back over the worker's stdout. A worker exits when its stdin closes, which
happens on `close()` and also when the node dies, even by SIGKILL, since the node holds
the only write end.

Other suites (secp256k1, P-256) release the GIL in their C libraries, so their batches
run on a thread pool. Either way the verdict is the suite's own: a worker calls the very
function (`ed25519_verify`) that the rest of the platform does.
"""

from __future__ import annotations

import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, NamedTuple

import msgspec

from consortia.crypto.suites import ED25519, ed25519_verify, suite_by_name


class VerifyJob(NamedTuple):
    suite: str
    public_key: bytes
    message: bytes
    signature: bytes


class VerifierError(RuntimeError):
    """A verification worker failed (exited, or could not start): the chunk has no verdict."""


def _verify_chunk(jobs: list[VerifyJob]) -> list[bool]:
    out: list[bool] = []
    for job in jobs:
        suite = suite_by_name(job.suite)
        out.append(suite.verify(job.public_key, job.message, job.signature))
    return out


class BatchVerifier:
    """Verifies many signatures at once on `workers` processes (default: one per core).

    `workers=0` verifies everything on the calling thread (tests, tools). Results keep the
    order of the jobs.
    """

    # Smaller batches are verified inline: shipping a chunk to a worker and back costs the
    # calling process about as much CPU as verifying this many signatures itself
    # (`python -m tests.crypto.bench_verify`).
    parallel_jobs_min = 2
    # A chunk's worth of work in a worker (~256 x 70 µs) dwarfs its IPC; smaller chunks
    # would cost the node more, larger ones balance worse between workers.
    chunk_jobs_max = 256

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(0, (os.cpu_count() or 1) if workers is None else workers)
        self._procs: _WorkerPool | None = None
        self._finalizer: weakref.finalize[[bool], BatchVerifier] | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def verify(self, jobs: list[VerifyJob]) -> list[bool]:
        """Verify `jobs`; blocks until done."""
        if not self._parallel(jobs):
            return _verify_chunk(jobs)
        results: list[bool] = []
        for part in self.submit(jobs):
            results.extend(part.result())
        return results

    def submit(self, jobs: list[VerifyJob]) -> list[Future[list[bool]]]:
        """Start verifying without waiting: one future per chunk, in job order (an event
        loop awaits them instead of parking a thread that waits for the workers). A batch
        too small to be worth shipping is verified before this returns."""
        if not jobs:
            return []
        if not self._parallel(jobs):
            done: Future[list[bool]] = Future()
            done.set_result(_verify_chunk(jobs))
            return [done]
        chunks = self._chunks(jobs)
        if all(job.suite == ED25519.name for job in jobs):
            return self._process_pool().submit(chunks)
        pool = self._thread_pool()
        return [pool.submit(_verify_chunk, chunk) for chunk in chunks]

    def start(self) -> None:
        """Start the worker processes now rather than on the first large batch (a serving
        node does, so no early request waits for their start-up)."""
        if self.workers > 0:
            self._process_pool().start()

    def _parallel(self, jobs: list[VerifyJob]) -> bool:
        return self.workers > 0 and len(jobs) >= self.parallel_jobs_min

    def _chunks(self, jobs: list[VerifyJob]) -> list[list[VerifyJob]]:
        count = max(min(self.workers, len(jobs)), -(-len(jobs) // self.chunk_jobs_max))
        size = -(-len(jobs) // count)
        return [jobs[i : i + size] for i in range(0, len(jobs), size)]

    def _process_pool(self) -> _WorkerPool:
        with self._lock:
            self._check_open()
            if self._procs is None:
                self._procs = _WorkerPool(self.workers)
                # A verifier dropped without close() still lets its workers go.
                self._finalizer = weakref.finalize(self, self._procs.close, False)
            return self._procs

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            self._check_open()
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="verify")
            return self._threads

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("cannot verify in parallel after close()")

    def close(self) -> None:
        """Finish what was submitted, then stop the workers."""
        with self._lock:
            self._closed = True
            procs, threads, finalizer = self._procs, self._threads, self._finalizer
            self._procs = self._threads = self._finalizer = None
        if finalizer is not None:
            finalizer.detach()
        if procs is not None:
            procs.close()
        if threads is not None:
            threads.shutdown(wait=True)


# ---- the parent side -------------------------------------------------------------------

_FRAME = struct.Struct("<I")  # payload length; a reply with the top bit set carries an error
_ERROR = 0x8000_0000
_encode_jobs = msgspec.msgpack.Encoder().encode
_SRC_ROOT = str(Path(__file__).resolve().parents[2])  # where this `consortia` is imported from
_WORKER_CODE = (
    f"import sys; sys.path.insert(0, {_SRC_ROOT!r}); from consortia.crypto.batch import serve; serve()"
)


class _Chunk:
    __slots__ = ("frame", "future", "jobs")

    def __init__(self, jobs: list[VerifyJob]) -> None:
        body = _encode_jobs(jobs)
        self.frame = _FRAME.pack(len(body)) + body
        self.jobs = len(jobs)
        self.future: Future[list[bool]] = Future()
        self.future.set_running_or_notify_cancel()  # a chunk cannot be taken back


class _WorkerPool:
    """Worker processes, started on first use; each chunk goes to the least loaded one."""

    def __init__(self, size: int) -> None:
        self._size = size
        # Re-entrant: the verifier's finalizer may run (cyclic GC) on a thread holding it.
        self._lock = threading.RLock()
        self._workers: list[_Worker] = []
        self._closed = False

    def submit(self, chunks: list[list[VerifyJob]]) -> list[Future[list[bool]]]:
        items = [_Chunk(chunk) for chunk in chunks]  # encoded outside the lock
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a closed BatchVerifier")
            self._start_missing()
            for item in items:
                min(self._workers, key=_Worker.load).send(item)
        return [item.future for item in items]

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot start a closed BatchVerifier")
            self._start_missing()

    def _start_missing(self) -> None:
        # With the lock held: (re)start workers up to the pool's size.
        while len(self._workers) < self._size:
            try:
                self._workers.append(_Worker(self))
            except OSError as exc:
                if not self._workers:
                    raise VerifierError(f"cannot start a signature verification worker: {exc}") from exc
                return  # go on with fewer

    def answered(self, worker: _Worker) -> _Chunk:
        with self._lock:
            return worker.answered()

    def exited(self, worker: _Worker, code: int) -> None:
        """`worker`'s process ended: the chunks it held fail; the next submit replaces it."""
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            worker.finish()
            held = worker.take_unanswered()
        error = VerifierError(f"signature verification worker exited (code {code})")
        for chunk in held:
            chunk.future.set_exception(error)

    def close(self, wait: bool = True) -> None:
        """Workers answer what they were sent, then exit; `wait` joins them."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            for worker in workers:
                worker.finish()
        if wait:
            for worker in workers:
                worker.join()


class _Worker:
    """One worker process, a parent thread feeding it chunks and one reading its answers.

    The pool's lock guards `_in_flight` and `_load`; chunks are answered in the order sent.
    """

    def __init__(self, pool: _WorkerPool) -> None:
        self._in_flight: deque[_Chunk] = deque()
        self._load = 0  # jobs sent and not yet answered
        self._frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:  # pragma: no cover - Popen made both pipes
            raise OSError("worker pipes missing")
        self._threads = [
            threading.Thread(target=self._write, args=(stdin,), name="verify-feed", daemon=True),
            threading.Thread(target=self._read, args=(pool, stdout), name="verify-read", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def load(self) -> int:
        return self._load

    def send(self, chunk: _Chunk) -> None:
        self._in_flight.append(chunk)
        self._load += chunk.jobs
        self._frames.put(chunk.frame)

    def answered(self) -> _Chunk:
        chunk = self._in_flight.popleft()
        self._load -= chunk.jobs
        return chunk

    def finish(self) -> None:
        """Send nothing more: the worker exits once it has answered what it was sent."""
        self._frames.put(None)

    def take_unanswered(self) -> list[_Chunk]:
        held = list(self._in_flight)
        self._in_flight.clear()
        self._load = 0
        return held

    def _write(self, stdin: IO[bytes]) -> None:
        # A thread of its own: a pipe write may wait for the worker to read, and the
        # caller (often the event loop) must not.
        try:
            while (frame := self._frames.get()) is not None:
                stdin.write(frame)
                stdin.flush()
        except OSError:
            pass  # the worker is gone: the reader sees its stdout close
        finally:
            try:
                stdin.close()  # EOF: the worker exits once it has answered what it read
            except OSError:
                pass

    def _read(self, pool: _WorkerPool, stdout: IO[bytes]) -> None:
        with stdout:
            while len(head := stdout.read(_FRAME.size)) == _FRAME.size:
                (size,) = _FRAME.unpack(head)
                body = stdout.read(size & ~_ERROR)
                if len(body) != size & ~_ERROR:
                    break  # cut off: the worker died while answering
                chunk = pool.answered(self)
                if size & _ERROR:
                    chunk.future.set_exception(VerifierError(body.decode(errors="replace")))
                else:
                    chunk.future.set_result([b == 1 for b in body])
        pool.exited(self, self._proc.wait())

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


# ---- the worker side -------------------------------------------------------------------

_decode_jobs = msgspec.msgpack.Decoder(list[tuple[str, bytes, bytes, bytes]]).decode


def serve() -> None:
    """A worker's main loop: answer chunks from stdin on stdout until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the node; it closes our stdin
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    # Nothing else may write into the frames: stray output goes to stderr.
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    try:
        while len(head := inp.read(_FRAME.size)) == _FRAME.size:
            (size,) = _FRAME.unpack(head)
            out.write(_answer(inp.read(size)))
            out.flush()
    except BrokenPipeError:
        pass  # the node is gone


def _answer(payload: bytes) -> bytes:
    try:
        jobs = _decode_jobs(payload)
        if any(suite != ED25519.name for suite, _, _, _ in jobs):
            raise ValueError("a worker verifies ed25519 jobs only")
        verdicts = bytes([ed25519_verify(key, message, sig) for _, key, message, sig in jobs])
    except Exception as exc:  # reported to the chunk's future, not fatal to the worker
        text = f"{type(exc).__name__}: {exc}".encode()
        return _FRAME.pack(len(text) | _ERROR) + text
    return _FRAME.pack(len(verdicts)) + verdicts
