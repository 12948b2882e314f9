"""A Python contract call with several reads and writes: 4 keys read, 4 written, 1 counter.

Keys are drawn from a working set of 10,000 so that reads mostly hit existing values.
"""

from __future__ import annotations

from consortia.bench.workload import Call, SetupEnv, Workload
from consortia.bench.workloads.kv_write import CONTRACT, SOURCE
from consortia.identity.wallet import SigningIdentity

KEYS = 10_000
KEYS_PER_CALL = 4


class ContractCall(Workload):
    name = "contract_call"
    description = f"{CONTRACT}.mix: {KEYS_PER_CALL} reads + {KEYS_PER_CALL + 1} writes (Python contract)"

    def setup(self, env: SetupEnv) -> None:
        env.deploy(CONTRACT, SOURCE)

    def call(self, worker: int, index: int, sender: SigningIdentity) -> Call:
        base = (worker * 104_729 + index * KEYS_PER_CALL) % KEYS
        keys = [f"m{(base + k * 2_503) % KEYS}" for k in range(KEYS_PER_CALL)]
        return Call(CONTRACT, "mix", [keys, f"{worker}:{index}"])


WORKLOAD = ContractCall()
