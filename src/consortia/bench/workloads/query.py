"""Read-only queries: `token.balance` on the committed state, no transaction, no block.

Reported as completed queries per second and request latency (there is nothing to commit).
"""

from __future__ import annotations

from consortia.bench.workload import Call, SetupEnv, Workload
from consortia.bench.workloads.transfer import Transfer

ACCOUNTS = 64


class Query(Workload):
    name = "query"
    description = "token.balance view call (read-only, answered by the node that receives it)"
    read_only = True

    def setup(self, env: SetupEnv) -> None:
        Transfer().setup(env)  # funded accounts make the reads hit real values

    def query(self, worker: int, index: int) -> Call:
        return Call("token", "balance", [f"org1/sink{(worker * 31 + index) % ACCOUNTS}"])


WORKLOAD = Query()
