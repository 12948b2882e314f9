"""The execution layer: deterministic state transitions over speculative overlays.

Modules (imported directly; this package re-exports nothing so the sandbox and the
executor can import each other's leaf modules without cycles):
    overlay     Overlay: uncommitted writes stacked over a state (blocks, txs, calls, forks)
    keys        the state key layout and composite keys
    context     Context: what a contract sees as `self.ctx`; step costs
    executor    Executor.execute_block / Executor.query; TxInput, BlockOutcome
    genesis     genesis_writes, config_from_state
    system      native system contracts: token, config, lifecycle
    sandbox     the Python contract sandbox and step meter
    contract    what contract source imports: Contract, ContractError, view
    errors      ExecutionError and its subclasses
    evm/        the EVM (py-evm on overlays): Ethereum transactions, calls, the allowlist
"""
