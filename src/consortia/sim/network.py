"""The fake network: per-link latency, loss, duplication, reordering and partitions.

Links are directed, between node identities. Each send draws its fate from the run's
generator: dropped (partitioned or lost), delivered once, or delivered twice. Without
reordering a link is FIFO, as a TCP connection is: a message never arrives before one sent
earlier on the same link. Twins add instance-level sides on top (see `TwinsSplit`).
"""

from __future__ import annotations

import random

from consortia.sim.options import SimOptions


class FakeNetwork:
    def __init__(self, options: SimOptions, rng: random.Random):
        self.o = options
        self.rng = rng
        n = options.nodes
        self._cuts: list[list[tuple[int, int]]] = [[] for _ in range(n * n)]
        for p in options.partitions:
            for c in p.cuts:
                self._cuts[c.src * n + c.dst].append((c.start_ms, c.end_ms))
        self._slow = set(options.slow_nodes)
        self._fifo: dict[tuple[int, int], int] = {}  # (src instance, dst instance) -> last arrival
        self.healed = False  # the liveness phase: every fault of the network is gone
        self.counts = {"sent": 0, "lost": 0, "partitioned": 0, "duplicated": 0, "reordered": 0}

    def cut(self, src: int, dst: int, now: int) -> bool:
        if self.healed:
            return False
        return any(a <= now < b for a, b in self._cuts[src * self.o.nodes + dst])

    def arrivals(self, src: int, dst: int, src_inst: int, dst_inst: int, now: int) -> list[int]:
        """Arrival times of one message from node `src` to node `dst` sent at `now`."""
        self.counts["sent"] += 1
        if src != dst and self.cut(src, dst, now):
            self.counts["partitioned"] += 1
            return []
        o = self.o
        if not self.healed and o.loss_permille and self.rng.randrange(1000) < o.loss_permille:
            self.counts["lost"] += 1
            return []
        copies = 1
        if not self.healed and o.dup_permille and self.rng.randrange(1000) < o.dup_permille:
            self.counts["duplicated"] += 1
            copies = 2
        out: list[int] = []
        for _ in range(copies):
            delay = o.latency_ms[src * o.nodes + dst]
            if o.jitter_ms:
                delay += self.rng.randint(0, o.jitter_ms)
            if src in self._slow or dst in self._slow:
                delay += o.slow_extra_ms
            at = now + delay
            key = (src_inst, dst_inst)
            last = self._fifo.get(key, 0)
            if at < last:
                if o.reorder and not self.healed:
                    self.counts["reordered"] += 1
                else:
                    at = last  # FIFO link: wait behind the earlier message
            else:
                self._fifo[key] = at
            out.append(at)
        return out
