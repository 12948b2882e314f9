"""Typed errors of the execution layer (besides the contract-facing ones in `contract`)."""

from __future__ import annotations


class ExecutionError(Exception):
    """Base of every error the execution layer raises for bad input or state."""


class OverlayClosed(ExecutionError):
    """An overlay was used after it was merged into its parent or discarded."""


class KeyLayoutError(ExecutionError):
    """A name or key part cannot be placed in the state key layout."""


class StateError(ExecutionError):
    """Committed state lacks a record it must hold (e.g. the channel config)."""


class QueryError(ExecutionError):
    """Base of the errors a read-only query raises."""


class UnknownContract(QueryError):
    """No system contract or committed user contract has this name."""


class UnknownMethodError(QueryError):
    """The contract has no public method of this name."""


class NotAView(QueryError):
    """The method may write state, so it cannot run as a query."""


class QueryFailed(QueryError):
    """The view raised, ran out of steps or returned a value that is not plain data."""
