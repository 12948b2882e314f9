"""Log queries: filter criteria (addresses, topics, block range) and the ledger scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consortia.api.jsonrpc.codec import (
    INVALID_PARAMS,
    LIMIT_EXCEEDED,
    RpcError,
    parse_addr,
    parse_block_ref,
    parse_hash,
)
from consortia.api.jsonrpc.objects import EthBlock, receipt_logs
from consortia.ledger.store import Ledger

ADDRESSES_MAX = 1_000
TOPIC_POSITIONS_MAX = 4
TOPIC_CHOICES_MAX = 1_000


@dataclass(frozen=True, slots=True)
class LogCriteria:
    """Which logs match: any of `addresses` (None: any address), and per topic position any
    of the listed topics (None: any topic); a log needs at least as many topics as there
    are positions."""

    addresses: frozenset[bytes] | None
    topics: tuple[frozenset[bytes] | None, ...]

    def matches(self, address: bytes, topics: list[bytes]) -> bool:
        if self.addresses is not None and address not in self.addresses:
            return False
        if len(topics) < len(self.topics):
            return False
        pairs = zip(self.topics, topics, strict=False)  # the log may have more topics
        return all(wanted is None or topic in wanted for wanted, topic in pairs)


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A parsed filter object: criteria plus a block range (as given) or one block hash."""

    criteria: LogCriteria
    from_block: Any
    to_block: Any
    block_hash: bytes | None


def parse_criteria(spec: dict[str, Any]) -> LogCriteria:
    address = spec.get("address")
    addresses: frozenset[bytes] | None
    if address is None:
        addresses = None
    elif isinstance(address, list):
        if len(address) > ADDRESSES_MAX:
            raise RpcError(INVALID_PARAMS, f"at most {ADDRESSES_MAX} addresses")
        addresses = frozenset(parse_addr(a, "address") for a in address) or None
    else:
        addresses = frozenset((parse_addr(address, "address"),))
    raw_topics = spec.get("topics")
    if raw_topics is None:
        raw_topics = []
    if not isinstance(raw_topics, list) or len(raw_topics) > TOPIC_POSITIONS_MAX:
        raise RpcError(INVALID_PARAMS, f"topics must be a list of at most {TOPIC_POSITIONS_MAX} positions")
    topics: list[frozenset[bytes] | None] = []
    for position in raw_topics:
        if position is None:
            topics.append(None)
        elif isinstance(position, list):
            if len(position) > TOPIC_CHOICES_MAX:
                raise RpcError(INVALID_PARAMS, f"at most {TOPIC_CHOICES_MAX} topics per position")
            # An empty list, or one holding null, matches anything (as geth reads it).
            if not position or any(t is None for t in position):
                topics.append(None)
            else:
                topics.append(frozenset(parse_hash(t, "topic") for t in position))
        else:
            topics.append(frozenset((parse_hash(position, "topic"),)))
    return LogCriteria(addresses, tuple(topics))


def parse_log_query(spec: Any) -> LogQuery:
    if not isinstance(spec, dict):
        raise RpcError(INVALID_PARAMS, "expected a filter object")
    unknown = set(spec) - {"address", "topics", "fromBlock", "toBlock", "blockHash"}
    if unknown:
        raise RpcError(INVALID_PARAMS, f"unknown filter fields: {', '.join(sorted(unknown))}")
    block_hash = None
    if spec.get("blockHash") is not None:
        if spec.get("fromBlock") is not None or spec.get("toBlock") is not None:
            raise RpcError(INVALID_PARAMS, "blockHash cannot be combined with fromBlock/toBlock")
        block_hash = parse_hash(spec["blockHash"], "blockHash")
    from_block, to_block = spec.get("fromBlock"), spec.get("toBlock")
    for bound in (from_block, to_block):
        parse_block_ref(bound, 0)  # validate the form now; heights resolve at query time
    return LogQuery(parse_criteria(spec), from_block, to_block, block_hash)


def resolve_range(query: LogQuery, head: int) -> tuple[int, int]:
    """[first, last] heights of a range query, clamped to the head; raises on a bad range."""
    first = parse_block_ref(query.from_block, head)
    last = parse_block_ref(query.to_block, head)
    if first > last:
        raise RpcError(INVALID_PARAMS, f"invalid block range: fromBlock {first} > toBlock {last}")
    return first, min(last, head)


def check_range(first: int, last: int, blocks_max: int) -> None:
    """Raises RpcError (LIMIT_EXCEEDED) when [first, last] spans more than `blocks_max`."""
    if last - first + 1 > blocks_max:
        raise RpcError(
            LIMIT_EXCEEDED,
            f"block range too large: at most {blocks_max} blocks per query",
            {"limit": blocks_max},
        )


def block_logs(view: EthBlock, criteria: LogCriteria) -> list[dict[str, Any]]:
    return [
        view.log_object(entry, log_index, log)
        for entry, log_index, log in view.logs()
        if criteria.matches(log[0], log[1])
    ]


def scan_logs(
    ledger: Ledger, criteria: LogCriteria, first: int, last: int, gas_limit: int, results_max: int
) -> list[dict[str, Any]]:
    """Matching logs of committed blocks first..last, in order. Reads only blocks with a
    matching log. Raises RpcError (LIMIT_EXCEEDED) past `results_max` results."""
    found: list[dict[str, Any]] = []
    for height in range(max(first, 1), last + 1):
        receipts = ledger.block_receipts(height)
        if receipts is None:
            break
        if not any(criteria.matches(a, t) for r in receipts for a, t, _ in receipt_logs(r)):
            continue
        block = ledger.block(height)
        if block is None:
            break
        found.extend(block_logs(EthBlock(block, receipts, gas_limit), criteria))
        if len(found) > results_max:
            raise RpcError(
                LIMIT_EXCEEDED,
                f"query returned more than {results_max} results; narrow the block range",
                {"limit": results_max},
            )
    return found
