"""Key-value writes through a small Python contract the harness deploys (one write each).

Every transaction writes a fresh key, so the state store grows by one key per transaction:
the figure shows the cost of the sandbox plus a growing state tree.
"""

from __future__ import annotations

from consortia.bench.workload import Call, SetupEnv, Workload
from consortia.identity.wallet import SigningIdentity

CONTRACT = "benchkv"
VALUE_BYTES = 100

# Sandbox source (see docs/contracts.md): deployed as text, so no annotations or imports.
SOURCE = '''\
from consortia.contract import Contract, ContractError, view


def check_key(key):
    if not isinstance(key, str) or not 1 <= len(key) <= 128:
        raise ContractError("key must be a str of 1..128 characters")
    return key


class BenchKv(Contract):
    def put(self, key, value):
        self.ctx.put(check_key(key), value)

    def mix(self, keys, value):
        """Read every key, then write each one: several reads and writes in one call."""
        total = 0
        for key in keys:
            old = self.ctx.get(check_key(key))
            if old is not None:
                total = total + len(old)
        for key in keys:
            self.ctx.put(key, value)
        self.ctx.put("mix-total", (self.ctx.get("mix-total") or 0) + total)
        return total

    @view
    def get(self, key):
        return self.ctx.get(check_key(key))
'''


class KvWrite(Workload):
    name = "kv_write"
    description = f"{CONTRACT}.put of a fresh key with a {VALUE_BYTES}-byte value (Python contract)"

    def setup(self, env: SetupEnv) -> None:
        env.deploy(CONTRACT, SOURCE)

    def call(self, worker: int, index: int, sender: SigningIdentity) -> Call:
        # The nonce makes every transaction unique; the key makes every write a new key.
        key = f"w{worker}-{index}-{sender.name}"
        return Call(CONTRACT, "put", [key, "v" * VALUE_BYTES])


WORKLOAD = KvWrite()
