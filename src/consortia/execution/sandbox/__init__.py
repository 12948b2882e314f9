"""The deterministic Python contract sandbox: deploy-time check, step metering, safe runtime.

checker        check_source: the allowlist over the syntax tree (SandboxViolation)
rewrite        instrument: metering and guard hooks inserted into the checked tree
meter          Meter, OutOfSteps, CallDepthExceeded; the hooks that charge steps
guards         run-time guards for operators, subscripts, attributes, f-strings
methods        the methods of builtin value types contracts may call, guarded
safe_builtins  the builtins contracts run with
values         weighing, size checks and address-free rendering of values
runtime        compile_contract -> CompiledContract.invoke
limits         every limit, in one place
"""

from consortia.execution.sandbox.checker import BUILTIN_NAMES, check_source
from consortia.execution.sandbox.errors import (
    BadArguments,
    ContractRuntimeError,
    SandboxError,
    SandboxViolation,
    UnknownMethod,
    ValueTooLarge,
)
from consortia.execution.sandbox.limits import CALL_DEPTH_MAX, STEPS_MAX_DEFAULT
from consortia.execution.sandbox.meter import CallDepthExceeded, Meter, OutOfSteps
from consortia.execution.sandbox.runtime import CompiledContract, compile_contract

__all__ = [
    "BUILTIN_NAMES",
    "CALL_DEPTH_MAX",
    "STEPS_MAX_DEFAULT",
    "BadArguments",
    "CallDepthExceeded",
    "CompiledContract",
    "ContractRuntimeError",
    "Meter",
    "OutOfSteps",
    "SandboxError",
    "SandboxViolation",
    "UnknownMethod",
    "ValueTooLarge",
    "check_source",
    "compile_contract",
]
