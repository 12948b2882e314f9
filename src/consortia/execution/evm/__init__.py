"""The EVM: Solidity contracts beside Python contracts, on the same blocks and state.

Modules (imported directly; only `machine` and `accounts` load py-evm, so the executor and
the API import the rest freely and pay for the interpreter only when it is used):
    layout       the state key layout of accounts, code, storage and the allowlist; readers
    permissions  the account allowlist, changed by config proposals under the admin policy
    outcome      EvmBlock, EvmOutcome and the Receipt an Ethereum transaction becomes
    accounts     OverlayAccountDB: py-evm's account database over our overlays
    machine      Evm.apply (a transaction) and Evm.call (read-only), Cancun rules, gas unpriced
"""
