"""Transactions this node already decoded and signature-checked, by their exact bytes.

A validator admits a transaction (decode, shape, signature) when a client submits it or a
peer gossips it, and then meets the very same bytes again in a proposal or a committed
block. `VerifiedTxs` remembers the admission's result, keyed by the encoded envelope itself,
so the block path skips the second decode and signature check. The key is the whole byte
string (dict lookup compares it in full), and a signature's validity is a pure function of
those bytes, so skipping the check gives exactly the answer re-checking would: execution
stays deterministic. Anything not remembered is checked as before.

Entries are taken out when a block uses them; the memory is bounded, oldest out first.
Filled from the event loop, emptied from the commit thread: each step is one OrderedDict
operation, atomic under the GIL.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from consortia.execution.executor import TxInput

VERIFIED_MAX = 200_000  # the mempool's default capacity: every pooled tx fits


class VerifiedTxs:
    def __init__(self, max_entries: int = VERIFIED_MAX) -> None:
        self._entries: OrderedDict[bytes, TxInput] = OrderedDict()
        self._max = max(0, max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, raw: bytes, tx_input: TxInput) -> None:
        """Remember that `raw` decodes to `tx_input` and its signature verifies."""
        if self._max == 0:
            return
        entries = self._entries
        entries[raw] = tx_input
        if len(entries) > self._max:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by the commit thread meanwhile
                pass

    def take(self, raw: bytes) -> TxInput | None:
        """The checked transaction for exactly these bytes (now forgotten), or None."""
        return self._entries.pop(raw, None)

    def forget(self, raws: Iterable[bytes]) -> None:
        entries = self._entries
        for raw in raws:
            entries.pop(raw, None)
