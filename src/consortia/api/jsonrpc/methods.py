"""The JSON-RPC dispatcher and every method it serves (listed in the package docstring)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec

from consortia import __version__
from consortia.api.jsonrpc.calls import CallArgs, call_error, estimate_gas, parse_call
from consortia.api.jsonrpc.codec import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LATEST_TAGS,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_ERROR,
    RpcError,
    data_hex,
    expect_params,
    param,
    parse_addr,
    parse_block_ref,
    parse_data,
    parse_hash,
    parse_qty,
    qty,
    word_hex,
)
from consortia.api.jsonrpc.fees import fee_history, parse_block_count, parse_percentiles
from consortia.api.jsonrpc.filters import FilterRegistry
from consortia.api.jsonrpc.limits import RpcLimits
from consortia.api.jsonrpc.logs import (
    LogCriteria,
    LogQuery,
    check_range,
    parse_criteria,
    parse_log_query,
    resolve_range,
    scan_logs,
)
from consortia.api.jsonrpc.objects import EthBlock, tx_object
from consortia.execution.evm.layout import EvmStateError, read_account, read_code, read_storage
from consortia.execution.evm.outcome import EvmOutcome, block_gas_limit, tx_gas_limit
from consortia.ledger.errors import LedgerError
from consortia.node.admission import AdmissionError
from consortia.node.runtime import Node
from consortia.types import STATUS_OK, Block, CodecError
from consortia.types.eth import EthTransaction, eth_chain_id_of, keccak256, tx_kind

BATCH_REQUESTS_MAX = 1000

T = TypeVar("T")
VIEWS_CACHED = 16
Handler = Callable[[list[Any]], Awaitable[Any]]


class Subscriber(Protocol):
    """A connection that can carry eth_subscription notifications (a WebSocket)."""

    def subscribe(self, kind: str, criteria: LogCriteria | None) -> str: ...

    def unsubscribe(self, subscription_id: str) -> bool: ...


class JsonRpc:
    """Answers JSON-RPC requests from one node's committed ledger, state and admission."""

    def __init__(self, node: Node, limits: RpcLimits | None = None) -> None:
        self.node = node
        self.limits = limits or RpcLimits()
        self.filters = FilterRegistry(self.limits.filters_max, self.limits.filter_idle_s)
        self._workers = asyncio.Semaphore(self.limits.offload_max)
        self._views: OrderedDict[int, EthBlock] = OrderedDict()  # used on the event loop only
        self._methods: dict[str, Handler] = {
            "web3_clientVersion": self.web3_client_version,
            "web3_sha3": self.web3_sha3,
            "net_version": self.net_version,
            "net_listening": self.net_listening,
            "net_peerCount": self.net_peer_count,
            "eth_chainId": self.eth_chain_id,
            "eth_syncing": self.eth_syncing,
            "eth_accounts": self.eth_accounts,
            "eth_blockNumber": self.eth_block_number,
            "eth_gasPrice": self.eth_gas_price,
            "eth_maxPriorityFeePerGas": self.eth_gas_price,
            "eth_feeHistory": self.eth_fee_history,
            "eth_getBalance": self.eth_get_balance,
            "eth_getTransactionCount": self.eth_get_transaction_count,
            "eth_getCode": self.eth_get_code,
            "eth_getStorageAt": self.eth_get_storage_at,
            "eth_call": self.eth_call,
            "eth_estimateGas": self.eth_estimate_gas,
            "eth_sendRawTransaction": self.eth_send_raw_transaction,
            "eth_getTransactionByHash": self.eth_get_transaction_by_hash,
            "eth_getTransactionByBlockNumberAndIndex": self.eth_get_tx_by_number_and_index,
            "eth_getTransactionByBlockHashAndIndex": self.eth_get_tx_by_hash_and_index,
            "eth_getTransactionReceipt": self.eth_get_transaction_receipt,
            "eth_getBlockReceipts": self.eth_get_block_receipts,
            "eth_getBlockByNumber": self.eth_get_block_by_number,
            "eth_getBlockByHash": self.eth_get_block_by_hash,
            "eth_getBlockTransactionCountByNumber": self.eth_get_block_tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self.eth_get_block_tx_count_by_hash,
            "eth_getUncleCountByBlockNumber": self.eth_get_uncle_count_by_number,
            "eth_getUncleCountByBlockHash": self.eth_get_uncle_count_by_hash,
            "eth_getLogs": self.eth_get_logs,
            "eth_newFilter": self.eth_new_filter,
            "eth_newBlockFilter": self.eth_new_block_filter,
            "eth_getFilterChanges": self.eth_get_filter_changes,
            "eth_getFilterLogs": self.eth_get_filter_logs,
            "eth_uninstallFilter": self.eth_uninstall_filter,
        }

    @property
    def methods(self) -> list[str]:
        return sorted([*self._methods, "eth_subscribe", "eth_unsubscribe"])

    async def handle(self, body: bytes | str, subscriber: Subscriber | None = None) -> Any:
        """The response document for a request body; None when only notifications came.

        `subscriber` is the WebSocket connection a request came over, if any: only there
        do eth_subscribe and eth_unsubscribe work.
        """
        try:
            request = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            return _error(None, RpcError(PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(request, list):
            if not request or len(request) > BATCH_REQUESTS_MAX:
                return _error(
                    None, RpcError(INVALID_REQUEST, f"a batch holds 1..{BATCH_REQUESTS_MAX} requests")
                )
            answers = [await self._one(r, subscriber) for r in request]
            kept = [a for a in answers if a is not None]
            return kept or None
        return await self._one(request, subscriber)

    async def _one(self, request: Any, subscriber: Subscriber | None) -> dict[str, Any] | None:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
            return _error(None, RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request"))
        rid = request.get("id")
        method, params = request.get("method"), request.get("params")
        if params is None:
            params = []  # omitted (or null): no parameters
        try:
            if not isinstance(method, str) or not isinstance(params, list):
                raise RpcError(INVALID_REQUEST, "method must be a string and params a list")
            if method in ("eth_subscribe", "eth_unsubscribe"):
                if subscriber is None:
                    raise RpcError(METHOD_NOT_FOUND, f"{method} is available over WebSocket only")
                result = self._subscription(method, params, subscriber)
            else:
                handler = self._methods.get(method)
                if handler is None:
                    raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
                result = await handler(params)
        except RpcError as exc:
            return None if "id" not in request else _error(rid, exc)
        except (EvmStateError, LedgerError) as exc:
            return None if "id" not in request else _error(rid, RpcError(INTERNAL_ERROR, str(exc)))
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ---- helpers -------------------------------------------------------------------------

    @property
    def _chain_id(self) -> int:
        return eth_chain_id_of(self.node.config)

    @property
    def _gas_limit(self) -> int:
        return block_gas_limit(self.node.config)

    @property
    def _head(self) -> int:
        return max(0, self.node.ledger.height)

    def _check_state_block(self, params: list[Any], index: int) -> None:
        """State is served at the head only: refuse any other block reference."""
        ref = param(params, index)
        if isinstance(ref, dict) and set(ref) <= {"blockHash", "requireCanonical"} and "blockHash" in ref:
            block = self.node.ledger.block_by_hash(parse_hash(ref["blockHash"], "blockHash"))
            if block is None:
                raise RpcError(SERVER_ERROR, "header not found")
            height = block.header.height
        else:
            height = parse_block_ref(ref, self._head)
        if height != self._head:
            raise RpcError(SERVER_ERROR, "only the latest state is available on this node")

    def _address_param(self, params: list[Any], what: str) -> bytes:
        expect_params(params, 1, 2, what)
        self._check_state_block(params, 1)
        return parse_addr(params[0], "address")

    def view(self, block: Block) -> EthBlock:
        """The Ethereum view of a committed block; the last few are kept (clients poll
        receipts of the newest blocks, and committed blocks never change)."""
        height = block.header.height
        cached = self._views.get(height)
        if cached is not None and cached.block.hash == block.hash:
            self._views.move_to_end(height)
            return cached
        receipts = self.node.ledger.block_receipts(height)
        if receipts is None:
            raise RpcError(INTERNAL_ERROR, f"no receipts for block {height}")
        made = EthBlock(block, receipts, self._gas_limit)
        self._views[height] = made
        while len(self._views) > VIEWS_CACHED:
            self._views.popitem(last=False)
        return made

    def _block_at(self, ref: Any) -> Block | None:
        height = parse_block_ref(ref, self._head)
        return self.node.ledger.block(height) if height <= self._head else None

    def _block_with_hash(self, value: Any) -> Block | None:
        return self.node.ledger.block_by_hash(parse_hash(value, "block hash"))

    def _size(self, block: Block) -> int:
        raw = self.node.ledger.block_bytes(block.header.height)
        return 0 if raw is None else len(raw)

    def _block_hashes(self, first: int, last: int) -> list[str]:
        hashes: list[str] = []
        for height in range(first, last + 1):
            block = self.node.ledger.block(height)
            if block is None:
                break
            hashes.append(data_hex(block.hash))
        return hashes

    async def _offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (EVM calls, ledger scans) off the event loop, a few at a time,
        so the loop keeps admitting and the commit thread keeps its share of the CPU."""
        async with self._workers:
            return await asyncio.to_thread(fn, *args)

    def _parse_call(self, params: list[Any], what: str) -> CallArgs:
        expect_params(params, 1, 3, what)
        if len(params) == 3 and params[2] is not None:
            raise RpcError(INVALID_PARAMS, "state overrides are not supported")
        args = parse_call(params[0])
        self._check_state_block(params, 1)
        return args

    def _run_call(self, args: CallArgs, gas: int | None) -> EvmOutcome:
        ledger = self.node.ledger
        head = ledger.head
        if head is None:
            raise RpcError(SERVER_ERROR, "the node has no blocks yet")
        return self.node.executor.eth_call(
            ledger.state,
            self.node.config,
            head.height,
            head.timestamp_ms,
            args.sender,
            args.to,
            args.data,
            args.value,
            gas,
        )

    # ---- node and chain ------------------------------------------------------------------

    async def web3_client_version(self, params: list[Any]) -> str:
        return f"consortia/v{__version__}"

    async def web3_sha3(self, params: list[Any]) -> str:
        expect_params(params, 1, 1, "one parameter: the data to hash")
        return data_hex(keccak256(parse_data(params[0], "data")))

    async def net_version(self, params: list[Any]) -> str:
        return str(self._chain_id)

    async def net_listening(self, params: list[Any]) -> bool:
        return True

    async def net_peer_count(self, params: list[Any]) -> str:
        return qty(len(self.node.connected_peers()))

    async def eth_chain_id(self, params: list[Any]) -> str:
        return qty(self._chain_id)

    async def eth_syncing(self, params: list[Any]) -> bool:
        return False  # a lagging node catches up by block sync; it answers from what it has

    async def eth_accounts(self, params: list[Any]) -> list[str]:
        return []  # the node holds no user keys: clients sign

    async def eth_block_number(self, params: list[Any]) -> str:
        return qty(self._head)

    async def eth_gas_price(self, params: list[Any]) -> str:
        return "0x0"  # gas is metered but never charged

    async def eth_fee_history(self, params: list[Any]) -> dict[str, Any]:
        expect_params(params, 2, 3, "blockCount, newestBlock and optional reward percentiles")
        count = parse_block_count(params[0])
        newest = min(parse_block_ref(params[1], self._head), self._head)
        return fee_history(count, newest, parse_percentiles(param(params, 2)))

    # ---- state ---------------------------------------------------------------------------

    async def eth_get_balance(self, params: list[Any]) -> str:
        address = self._address_param(params, "address and block")
        return qty(read_account(self.node.ledger.state, address).balance_int)

    async def eth_get_transaction_count(self, params: list[Any]) -> str:
        address = self._address_param(params, "address and block")
        committed = read_account(self.node.ledger.state, address).nonce
        if param(params, 1) == "pending":
            # Wallets ask for it to send several at once: count the pooled run.
            return qty(self.node.eth_next_nonce(address))
        return qty(committed)

    async def eth_get_code(self, params: list[Any]) -> str:
        address = self._address_param(params, "address and block")
        return data_hex(read_code(self.node.ledger.state, address))

    async def eth_get_storage_at(self, params: list[Any]) -> str:
        expect_params(params, 2, 3, "address, storage slot and block")
        address = parse_addr(params[0], "address")
        slot = parse_qty(params[1], "storage slot")
        self._check_state_block(params, 2)
        return word_hex(read_storage(self.node.ledger.state, address, slot))

    # ---- execution -----------------------------------------------------------------------

    async def eth_call(self, params: list[Any]) -> str:
        args = self._parse_call(params, "a call object and a block")
        # The executor caps the gas at the channel's per-transaction limit.
        outcome = await self._offload(self._run_call, args, args.gas)
        if outcome.status == STATUS_OK:
            return data_hex(outcome.output)
        raise call_error(outcome)

    async def eth_estimate_gas(self, params: list[Any]) -> str:
        args = self._parse_call(params, "a call object and a block")
        cap = tx_gas_limit(self.node.config)
        cap = cap if args.gas is None else min(args.gas, cap)
        return qty(await self._offload(estimate_gas, lambda gas: self._run_call(args, gas), cap))

    async def eth_send_raw_transaction(self, params: list[Any]) -> str:
        expect_params(params, 1, 1, "one parameter: the signed transaction")
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

    # ---- transactions and receipts -------------------------------------------------------

    def _located(self, tx_hash: bytes) -> tuple[EthBlock, int] | None:
        """The block view and Ethereum index of a committed Ethereum transaction."""
        location = self.node.ledger.tx_location(tx_hash)
        if location is None:
            return None
        block = self.node.ledger.block(location[0])
        if block is None:
            return None
        view = self.view(block)
        entry = view.by_channel_index(location[1])
        return None if entry is None else (view, entry.index)

    async def eth_get_transaction_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        expect_params(params, 1, 1, "one parameter: the transaction hash")
        tx_hash = parse_hash(params[0], "transaction hash")
        found = self._located(tx_hash)
        if found is not None:
            view, index = found
            return view.tx_object(view.entries[index])
        pending = self.node.pending_transaction(tx_hash)
        if isinstance(pending, EthTransaction):
            return tx_object(pending, None, None)
        return None

    async def eth_get_tx_by_number_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        expect_params(params, 2, 2, "a block and an index")
        block = self._block_at(params[0])
        return self._tx_at(block, params[1])

    async def eth_get_tx_by_hash_and_index(self, params: list[Any]) -> dict[str, Any] | None:
        expect_params(params, 2, 2, "a block hash and an index")
        return self._tx_at(self._block_with_hash(params[0]), params[1])

    def _tx_at(self, block: Block | None, index_in: Any) -> dict[str, Any] | None:
        index = parse_qty(index_in, "index", 2**32)
        if block is None:
            return None
        view = self.view(block)
        return view.tx_object(view.entries[index]) if index < len(view.entries) else None

    async def eth_get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        expect_params(params, 1, 1, "one parameter: the transaction hash")
        found = self._located(parse_hash(params[0], "transaction hash"))
        if found is None:
            return None
        view, index = found
        return view.receipt_object(view.entries[index])

    async def eth_get_block_receipts(self, params: list[Any]) -> list[dict[str, Any]] | None:
        expect_params(params, 1, 1, "one parameter: the block")
        ref = params[0]
        if isinstance(ref, dict) and set(ref) == {"blockHash"}:
            block = self._block_with_hash(ref["blockHash"])
        elif isinstance(ref, str) and len(ref) == 66:
            block = self._block_with_hash(ref)
        else:
            block = self._block_at(ref)
        if block is None:
            return None
        view = self.view(block)
        return [view.receipt_object(e) for e in view.entries]

    # ---- blocks --------------------------------------------------------------------------

    def _block_object(self, block: Block | None, full_in: Any) -> dict[str, Any] | None:
        if not isinstance(full_in, bool):
            raise RpcError(INVALID_PARAMS, "the second parameter (full transactions) must be a boolean")
        if block is None:
            return None
        return self.view(block).block_object(self._size(block), full_in)

    async def eth_get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        expect_params(params, 1, 2, "a block and whether to include full transactions")
        return self._block_object(self._block_at(params[0]), param(params, 1, False))

    async def eth_get_block_by_hash(self, params: list[Any]) -> dict[str, Any] | None:
        expect_params(params, 1, 2, "a block hash and whether to include full transactions")
        return self._block_object(self._block_with_hash(params[0]), param(params, 1, False))

    def _tx_count(self, block: Block | None) -> str | None:
        return None if block is None else qty(len(self.view(block).entries))

    async def eth_get_block_tx_count_by_number(self, params: list[Any]) -> str | None:
        expect_params(params, 1, 1, "one parameter: the block")
        return self._tx_count(self._block_at(params[0]))

    async def eth_get_block_tx_count_by_hash(self, params: list[Any]) -> str | None:
        expect_params(params, 1, 1, "one parameter: the block hash")
        return self._tx_count(self._block_with_hash(params[0]))

    async def eth_get_uncle_count_by_number(self, params: list[Any]) -> str | None:
        expect_params(params, 1, 1, "one parameter: the block")
        return None if self._block_at(params[0]) is None else "0x0"

    async def eth_get_uncle_count_by_hash(self, params: list[Any]) -> str | None:
        expect_params(params, 1, 1, "one parameter: the block hash")
        return None if self._block_with_hash(params[0]) is None else "0x0"

    # ---- logs and filters ----------------------------------------------------------------

    def _query_logs(self, query: LogQuery) -> list[dict[str, Any]]:
        """Every log the query matches, within the range and result limits (blocking)."""
        if query.block_hash is not None:
            block = self.node.ledger.block_by_hash(query.block_hash)
            if block is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            first = last = block.header.height
        else:
            first, last = resolve_range(query, self._head)
            check_range(first, last, self.limits.log_block_range_max)
        return self._scan(query.criteria, first, last)

    def _scan(self, criteria: LogCriteria, first: int, last: int) -> list[dict[str, Any]]:
        ledger, limits = self.node.ledger, self.limits
        return scan_logs(ledger, criteria, first, last, self._gas_limit, limits.log_results_max)

    async def eth_get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        expect_params(params, 1, 1, "one parameter: the filter object")
        query = parse_log_query(params[0])
        return await self._offload(self._query_logs, query)

    async def eth_new_filter(self, params: list[Any]) -> str:
        expect_params(params, 1, 1, "one parameter: the filter object")
        query = parse_log_query(params[0])
        if query.block_hash is not None:
            raise RpcError(INVALID_PARAMS, "a filter cannot name a blockHash; use eth_getLogs")
        return self.filters.install(query, self._head + 1)

    async def eth_new_block_filter(self, params: list[Any]) -> str:
        expect_params(params, 0, 0, "no parameters")
        return self.filters.install(None, self._head + 1)

    async def eth_get_filter_changes(self, params: list[Any]) -> list[Any]:
        """What committed since the last poll: block hashes, or matching logs. A poll covers
        at most the log block range limit; the next poll continues from there."""
        expect_params(params, 1, 1, "one parameter: the filter id")
        found = self.filters.get(params[0])
        head = self._head
        first = found.next_height
        last = min(head, first + self.limits.log_block_range_max - 1)
        query = found.query
        if query is None:
            hashes = await self._offload(self._block_hashes, first, last)
            found.next_height = max(found.next_height, first + len(hashes))
            return hashes
        if query.to_block is not None and query.to_block not in LATEST_TAGS:
            last = min(last, parse_block_ref(query.to_block, head))
        if query.from_block is not None and query.from_block not in LATEST_TAGS:
            first = max(first, parse_block_ref(query.from_block, head))
        logs: list[dict[str, Any]] = []
        if first <= last:
            logs = await self._offload(self._scan, query.criteria, first, last)
        found.next_height = max(found.next_height, last + 1)  # only once the scan succeeded
        return logs

    async def eth_get_filter_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        expect_params(params, 1, 1, "one parameter: the filter id")
        query = self.filters.get(params[0]).query
        if query is None:
            raise RpcError(INVALID_PARAMS, "not a log filter")
        return await self._offload(self._query_logs, query)

    async def eth_uninstall_filter(self, params: list[Any]) -> bool:
        expect_params(params, 1, 1, "one parameter: the filter id")
        return self.filters.uninstall(params[0])

    # ---- subscriptions (WebSocket only) --------------------------------------------------

    def _subscription(self, method: str, params: list[Any], subscriber: Subscriber) -> Any:
        if method == "eth_unsubscribe":
            expect_params(params, 1, 1, "one parameter: the subscription id")
            if not isinstance(params[0], str):
                raise RpcError(INVALID_PARAMS, "the subscription id must be a string")
            return subscriber.unsubscribe(params[0])
        expect_params(params, 1, 2, "a subscription kind (newHeads or logs) and its options")
        kind = params[0]
        if kind == "newHeads":
            if len(params) == 2 and params[1] not in (None, {}):
                raise RpcError(INVALID_PARAMS, "newHeads takes no options")
            return subscriber.subscribe(kind, None)
        if kind == "logs":
            spec = param(params, 1, {}) or {}
            if not isinstance(spec, dict) or set(spec) - {"address", "topics"}:
                raise RpcError(INVALID_PARAMS, "logs takes {address, topics}")
            return subscriber.subscribe(kind, parse_criteria(spec))
        raise RpcError(INVALID_PARAMS, f"unsupported subscription {kind!r}: newHeads or logs")


def _error(rid: Any, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": exc.json()}
