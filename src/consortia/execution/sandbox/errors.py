"""Typed errors of the sandbox. OutOfSteps and CallDepthExceeded live in `meter`."""

from __future__ import annotations

from consortia.execution.contract import ContractError


class SandboxError(Exception):
    """Base of the errors the sandbox raises for bad source or a bad call."""


class SandboxViolation(SandboxError):
    """The source is not an acceptable contract; `problems` are "line N: ..." strings."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class UnknownMethod(SandboxError):
    """The contract has no public method of this name."""


class BadArguments(SandboxError):
    """The arguments do not fit the method's parameters."""


class ContractRuntimeError(SandboxError):
    """Contract code raised something other than ContractError; the message is deterministic."""


class ValueTooLarge(ContractError):
    """A checked operation would produce a value over a sandbox limit (size, bits, nesting).

    A ContractError, so contract code may catch it like any other failure.
    """
