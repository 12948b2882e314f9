"""Benchmark harness: workloads, open-loop load from client processes, and reports.

A run (`consortia.bench.runner.run_fixed`) signs every transaction before the timed phase,
drives a network at a fixed rate from separate client processes, timestamps commits from the
nodes' block stream, accounts for every submitted transaction by scanning the committed
blocks, and reads CPU, peak RSS and disk use of every node from /proc and the data dirs.
"""

from consortia.bench.errors import BenchError

__all__ = ["BenchError"]
