"""Ethereum JSON-RPC at /jsonrpc: HTTP POST and WebSocket, what wallets and web3 libraries speak.

Methods (single and batch requests, over HTTP and WebSocket):
web3_clientVersion, web3_sha3, net_version, net_listening, net_peerCount, eth_chainId,
eth_syncing, eth_accounts, eth_blockNumber, eth_gasPrice, eth_maxPriorityFeePerGas,
eth_feeHistory, eth_getBalance, eth_getTransactionCount, eth_getCode, eth_getStorageAt,
eth_call, eth_estimateGas, eth_sendRawTransaction, eth_getTransactionByHash,
eth_getTransactionByBlockNumberAndIndex, eth_getTransactionByBlockHashAndIndex,
eth_getTransactionReceipt, eth_getBlockReceipts, eth_getBlockByNumber, eth_getBlockByHash,
eth_getBlockTransactionCountByNumber, eth_getBlockTransactionCountByHash,
eth_getUncleCountByBlockNumber, eth_getUncleCountByBlockHash, eth_getLogs, eth_newFilter,
eth_newBlockFilter, eth_getFilterChanges, eth_getFilterLogs, eth_uninstallFilter;
over WebSocket only: eth_subscribe (newHeads, logs) and eth_unsubscribe.

Differences from an Ethereum node:
- Blocks: a channel block may also hold native transactions; its Ethereum view lists only
  the Ethereum ones, with dense `transactionIndex`es, and gasUsed, cumulativeGasUsed,
  logsBloom and logIndex count only Ethereum receipts (see objects.py). Block hashes and
  the transactions/state/receipts roots are the channel's SHA-256 commitments, not keccak
  Patricia tries. There are no uncles, no mining: miner is the zero address, difficulty,
  nonce and mixHash are zero, baseFeePerGas is 0, gasLimit is the channel's block gas limit.
  Every committed block is final: latest, pending, safe and finalized all name the head,
  and log objects are never `removed`.
- State is served at the head only: eth_getBalance, eth_getTransactionCount, eth_getCode,
  eth_getStorageAt, eth_call and eth_estimateGas refuse any other block (-32000); blocks,
  transactions, receipts and logs are served for all history. The "pending" nonce counts
  the sender's pooled transactions that follow its committed nonce without a gap.
- Gas is metered but free: eth_gasPrice, eth_maxPriorityFeePerGas, effectiveGasPrice and
  every fee in eth_feeHistory are 0. A transaction with a nonce gap waits in the pool
  until the gap closes; one the channel recorded as invalid (e.g. over the block's gas
  budget) gets a receipt with status 0 and no gas used.
- No keys on the node (eth_accounts is empty; no eth_sendTransaction or eth_sign), no
  pending-transaction filters or subscriptions, no state overrides in eth_call.
- Limits (limits.RpcLimits): eth_getLogs and eth_getFilterLogs span at most 5,000 blocks
  and answer at most 10,000 logs, past either they fail with -32005 (limit exceeded); a
  node keeps at most 1,000 filters, each dropped after 5 minutes without a poll; a
  WebSocket connection holds at most 100 subscriptions.

Errors follow JSON-RPC 2.0: -32700 parse error, -32600 invalid request, -32601 unknown
method, -32602 invalid params, -32603 internal error; -32000 for a transaction refused at
admission (`data.code` carries the admission code) and other refusals (state at an old
block, unknown filter); -32005 for a limit exceeded; 3 for an eth_call or eth_estimateGas
that reverted (`data` is the revert data), as geth answers.
"""

from consortia.api.jsonrpc.codec import RpcError
from consortia.api.jsonrpc.limits import RpcLimits
from consortia.api.jsonrpc.methods import BATCH_REQUESTS_MAX, JsonRpc
from consortia.api.jsonrpc.objects import logs_bloom
from consortia.api.jsonrpc.websocket import serve_websocket

__all__ = [
    "BATCH_REQUESTS_MAX",
    "JsonRpc",
    "RpcError",
    "RpcLimits",
    "logs_bloom",
    "serve_websocket",
]
