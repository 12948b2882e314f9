"""The harness's error base: bad options, an unreachable target, a workload that cannot set up."""


class BenchError(Exception):
    """A benchmark could not run as asked; the message says why."""
