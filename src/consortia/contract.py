"""The names contract source imports: `from consortia.contract import Contract, ContractError, view`."""

from consortia.execution.contract import Contract, ContractError, view

__all__ = ["Contract", "ContractError", "view"]
