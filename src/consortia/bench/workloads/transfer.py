"""Signed token transfers with the `token` system contract: the headline throughput figure.

Copy this file to write your own workload: define a `Workload` subclass and name an
instance `WORKLOAD`, then run `consortia bench --workload path/to/your_copy.py`.
"""

from __future__ import annotations

from consortia.bench.workload import Call, SetupEnv, Workload
from consortia.identity.wallet import SigningIdentity

FUNDING = 10**12  # per sender: far more than any run moves
RECIPIENTS = 64


class Transfer(Workload):
    name = "transfer"
    description = "token.transfer of 1 unit between accounts (native contract: 2 reads, 2 writes)"

    def setup(self, env: SetupEnv) -> None:
        """Fund every sender from its own organisation's admin (only admins may issue)."""
        with env.client() as c:
            balances = {s: c.query("token", "balance", f"{s.org}/{s.name}") for s in env.senders}
        for sender, balance in balances.items():
            if int(balance) < FUNDING // 2:
                env.invoke(
                    env.admin(sender.org), Call("token", "issue", [f"{sender.org}/{sender.name}", FUNDING])
                )

    def call(self, worker: int, index: int, sender: SigningIdentity) -> Call:
        to = f"{sender.org}/sink{(worker * 7919 + index) % RECIPIENTS}"
        return Call("token", "transfer", [to, 1])


WORKLOAD = Transfer()
