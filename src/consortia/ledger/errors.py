"""Typed errors of the ledger. Everything it raises on purpose derives from LedgerError."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class LedgerCorrupt(LedgerError):
    """What is on disk contradicts itself (e.g. the block file is shorter than the index says)."""


class CorruptBlock(LedgerCorrupt):
    """A block record fails its checksum, its framing or its decoding."""


class WrongChannel(LedgerError):
    """The directory holds the ledger of another channel."""


class InvalidWrite(LedgerError):
    """A state write the store cannot hold (empty or over-long key, non-bytes value)."""


class NotFound(LedgerError):
    """The block or transaction asked for is not in the ledger."""


class InvalidBlock(LedgerError):
    """A block refused by commit. Nothing was written."""


class WrongHeight(InvalidBlock):
    """The block is not the next one (height != current height + 1)."""


class WrongParent(InvalidBlock):
    """The block's parent hash is not the hash of the current head."""


class StateRootMismatch(InvalidBlock):
    """The header's state root is not the root of the prepared state."""


class StalePrepared(InvalidBlock):
    """The prepared state was computed on a state that is no longer the head."""


class IncompatibleFormat(LedgerError):
    """The directory holds a ledger written in an on-disk format this version does not read."""
