"""Ethereum JSON-RPC over HTTP (POST /jsonrpc): what wallets and web3 libraries speak.

Served so far: web3_clientVersion, net_version, eth_chainId, eth_blockNumber,
eth_sendRawTransaction, eth_getTransactionReceipt, eth_call, eth_getBalance,
eth_getTransactionCount, eth_getCode; single and batch requests.

Differences from an Ethereum node: only the latest state is served (a block tag other than
latest/pending/safe/finalized or the head number is refused); "pending" nonces are the
committed ones; gas is free (effectiveGasPrice 0); a transaction the channel recorded as
invalid (e.g. a nonce gap) gets a receipt with status 0 and no gas used.

Errors follow JSON-RPC 2.0: -32700 parse error, -32600 invalid request, -32601 unknown
method, -32602 invalid params, -32603 internal error; -32000 for a transaction refused at
admission (`data.code` carries the admission code); 3 for an eth_call that reverted
(`data` is the revert data), as geth answers.
"""

from __future__ import annotations

from typing import Any

import msgspec

from consortia import __version__
from consortia.execution.contract import ContractError
from consortia.execution.evm.layout import EvmStateError, read_account, read_code
from consortia.execution.evm.outcome import EVM_CONTRACT, LOG_EVENT, TX_GAS_MAX
from consortia.execution.evm.permissions import parse_address
from consortia.node.admission import AdmissionError
from consortia.node.runtime import Node
from consortia.types import STATUS_OK, Block, CodecError, Receipt
from consortia.types.eth import decode_eth_transaction, eth_chain_id_of, keccak256, tx_kind

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3
BATCH_REQUESTS_MAX = 1000
_LATEST_TAGS = ("latest", "pending", "safe", "finalized")


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# ---- hex helpers: the Ethereum JSON encoding ------------------------------------------------


def qty(value: int) -> str:
    return hex(value)


def data_hex(value: bytes) -> str:
    return "0x" + value.hex()


def parse_data(value: Any, what: str) -> bytes:
    """Raises RpcError (invalid params) unless `value` is "0x" + an even number of hex digits."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise RpcError(INVALID_PARAMS, f"{what} must be a 0x-prefixed hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"{what} is not valid hex") from None


def parse_qty(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or len(value) < 3:
        raise RpcError(INVALID_PARAMS, f"{what} must be a 0x-prefixed hex quantity")
    try:
        return int(value, 16)
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"{what} is not a hex quantity") from None


def parse_addr(value: Any, what: str) -> bytes:
    try:
        return parse_address(value)
    except ContractError:
        raise RpcError(INVALID_PARAMS, f"{what} must be a 20-byte 0x-prefixed address") from None


def logs_bloom(logs: list[tuple[bytes, list[bytes]]]) -> bytes:
    """The 2048-bit bloom of log addresses and topics (Yellow Paper, section 4.3.1)."""
    bloom = 0
    for address, topics in logs:
        for item in (address, *topics):
            digest = keccak256(item)
            for i in (0, 2, 4):
                bloom |= 1 << (int.from_bytes(digest[i : i + 2], "big") & 2047)
    return bloom.to_bytes(256, "big")


class JsonRpc:
    """Answers JSON-RPC requests from one node's committed state and admission."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._methods = {
            "web3_clientVersion": self.web3_client_version,
            "net_version": self.net_version,
            "eth_chainId": self.eth_chain_id,
            "eth_blockNumber": self.eth_block_number,
            "eth_sendRawTransaction": self.eth_send_raw_transaction,
            "eth_getTransactionReceipt": self.eth_get_transaction_receipt,
            "eth_call": self.eth_call,
            "eth_getBalance": self.eth_get_balance,
            "eth_getTransactionCount": self.eth_get_transaction_count,
            "eth_getCode": self.eth_get_code,
        }

    async def handle(self, body: bytes) -> Any:
        """The response document for a request body; None when only notifications came."""
        try:
            request = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            return _error(None, RpcError(PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(request, list):
            if not request or len(request) > BATCH_REQUESTS_MAX:
                return _error(
                    None, RpcError(INVALID_REQUEST, f"a batch holds 1..{BATCH_REQUESTS_MAX} requests")
                )
            answers = [await self._one(r) for r in request]
            kept = [a for a in answers if a is not None]
            return kept or None
        return await self._one(request)

    async def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
            return _error(None, RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request"))
        rid = request.get("id")
        method, params = request.get("method"), request.get("params", [])
        try:
            if not isinstance(method, str) or not isinstance(params, list):
                raise RpcError(INVALID_REQUEST, "method must be a string and params a list")
            handler = self._methods.get(method)
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
            result = await handler(params)
        except RpcError as exc:
            return None if "id" not in request else _error(rid, exc)
        except EvmStateError as exc:
            return None if "id" not in request else _error(rid, RpcError(INTERNAL_ERROR, str(exc)))
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ---- helpers -------------------------------------------------------------------------

    @property
    def _chain_id(self) -> int:
        return eth_chain_id_of(self.node.config)

    def _check_block(self, params: list[Any], index: int) -> None:
        tag = params[index] if len(params) > index else "latest"
        if tag in _LATEST_TAGS:
            return
        if (
            isinstance(tag, str)
            and tag.startswith("0x")
            and parse_qty(tag, "block") == self.node.ledger.height
        ):
            return
        raise RpcError(SERVER_ERROR, "only the latest state is available on this node")

    def _address_param(self, params: list[Any]) -> bytes:
        if not params:
            raise RpcError(INVALID_PARAMS, "missing address parameter")
        self._check_block(params, 1)
        return parse_addr(params[0], "address")

    # ---- methods -------------------------------------------------------------------------

    async def web3_client_version(self, params: list[Any]) -> str:
        return f"consortia/v{__version__}"

    async def net_version(self, params: list[Any]) -> str:
        return str(self._chain_id)

    async def eth_chain_id(self, params: list[Any]) -> str:
        return qty(self._chain_id)

    async def eth_block_number(self, params: list[Any]) -> str:
        return qty(max(0, self.node.ledger.height))

    async def eth_get_balance(self, params: list[Any]) -> str:
        return qty(read_account(self.node.ledger.state, self._address_param(params)).balance_int)

    async def eth_get_transaction_count(self, params: list[Any]) -> str:
        return qty(read_account(self.node.ledger.state, self._address_param(params)).nonce)

    async def eth_get_code(self, params: list[Any]) -> str:
        return data_hex(read_code(self.node.ledger.state, self._address_param(params)))

    async def eth_send_raw_transaction(self, params: list[Any]) -> str:
        if len(params) != 1:
            raise RpcError(INVALID_PARAMS, "expected one parameter: the signed transaction")
        raw = parse_data(params[0], "transaction")
        try:
            if tx_kind(raw) != "eth":
                raise RpcError(INVALID_PARAMS, "not an Ethereum transaction")
        except CodecError as exc:
            raise RpcError(INVALID_PARAMS, f"not an Ethereum transaction: {exc}") from exc
        try:
            tx_id = await self.node.submit(raw)
        except AdmissionError as exc:
            raise RpcError(SERVER_ERROR, str(exc), {"code": exc.code}) from exc
        return data_hex(tx_id)

    async def eth_call(self, params: list[Any]) -> str:
        if not params or not isinstance(params[0], dict):
            raise RpcError(INVALID_PARAMS, "expected a call object")
        self._check_block(params, 1)
        call = params[0]
        sender = parse_addr(call["from"], "from") if call.get("from") else b"\x00" * 20
        to = parse_addr(call["to"], "to") if call.get("to") else None
        data = parse_data(call.get("input", call.get("data", "0x")), "data")
        value = parse_qty(call["value"], "value") if call.get("value") else 0
        gas = min(parse_qty(call["gas"], "gas"), TX_GAS_MAX) if call.get("gas") else None
        ledger = self.node.ledger
        head = ledger.head
        if head is None:
            raise RpcError(SERVER_ERROR, "the node has no blocks yet")
        outcome = self.node.executor.eth_call(
            ledger.state, self.node.config, head.height, head.timestamp_ms, sender, to, data, value, gas
        )
        if outcome.status == STATUS_OK:
            return data_hex(outcome.output)
        if outcome.error.startswith("reverted"):
            message = "execution reverted" + outcome.error[len("reverted") :]
            raise RpcError(EXECUTION_REVERTED, message, data_hex(outcome.output))
        raise RpcError(SERVER_ERROR, outcome.error)

    async def eth_get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        if len(params) != 1:
            raise RpcError(INVALID_PARAMS, "expected one parameter: the transaction hash")
        tx_hash = parse_data(params[0], "transaction hash")
        ledger = self.node.ledger
        location = ledger.tx_location(tx_hash)
        if location is None:
            return None
        height, index = location
        block = ledger.block(height)
        receipts = ledger.block_receipts(height)
        if block is None or receipts is None or tx_kind(block.txs[index]) != "eth":
            return None
        return _receipt_json(block, receipts, index)


def _receipt_json(block: Block, receipts: list[Receipt], index: int) -> dict[str, Any]:
    tx = decode_eth_transaction(block.txs[index])
    block_hash, height = data_hex(block.hash), qty(block.header.height)
    cumulative = log_index = 0
    for i, receipt in enumerate(receipts[:index]):
        if tx_kind(block.txs[i]) == "eth":
            cumulative += receipt.steps
            log_index += len(_logs(receipt))
    receipt = receipts[index]
    result = receipt.result if isinstance(receipt.result, dict) else {}
    logs = _logs(receipt)
    created = result.get("contract_address")
    return {
        "transactionHash": data_hex(tx.hash),
        "transactionIndex": qty(index),
        "blockHash": block_hash,
        "blockNumber": height,
        "from": data_hex(tx.sender),
        "to": None if tx.to is None else data_hex(tx.to),
        "cumulativeGasUsed": qty(cumulative + receipt.steps),
        "gasUsed": qty(receipt.steps),
        "effectiveGasPrice": qty(0),
        "contractAddress": data_hex(created) if isinstance(created, bytes) else None,
        "logs": [
            {
                "address": data_hex(address),
                "topics": [data_hex(t) for t in topics],
                "data": data_hex(data),
                "blockNumber": height,
                "blockHash": block_hash,
                "transactionHash": data_hex(tx.hash),
                "transactionIndex": qty(index),
                "logIndex": qty(log_index + i),
                "removed": False,
            }
            for i, (address, topics, data) in enumerate(logs)
        ],
        "logsBloom": data_hex(logs_bloom([(a, t) for a, t, _ in logs])),
        "status": qty(1 if receipt.status == STATUS_OK else 0),
        "type": qty(tx.tx_type),
    }


def _logs(receipt: Receipt) -> list[tuple[bytes, list[bytes], bytes]]:
    return [
        (e.payload["address"], list(e.payload["topics"]), e.payload["data"])
        for e in receipt.events
        if e.contract == EVM_CONTRACT and e.name == LOG_EVENT
    ]


def _error(rid: Any, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": exc.json()}
