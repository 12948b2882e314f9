"""Core types rendered as JSON-ready dicts. The only place that turns them into JSON."""

from __future__ import annotations

import base64
from typing import Any

from consortia.types import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    Block,
    Header,
    Receipt,
    Transaction,
    decode_envelope,
)
from consortia.types.eth import EthTransaction, decode_eth_transaction, tx_kind

STATUS_NAMES = {STATUS_OK: "ok", STATUS_FAILED: "failed", STATUS_INVALID: "invalid"}


def plain(value: Any) -> Any:
    """Contract values as JSON: bytes become {"$bytes": "<base64>"} so they round-trip."""
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def from_plain(value: Any) -> Any:
    """The inverse of `plain` for arguments sent by JSON clients."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"} and isinstance(value["$bytes"], str):
            return base64.b64decode(value["$bytes"], validate=True)
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    return value


def header_json(h: Header) -> dict[str, Any]:
    return {
        "chain_id": h.chain_id,
        "channel": h.channel,
        "height": h.height,
        "hash": h.hash.hex(),
        "parent_hash": h.parent_hash.hex(),
        "timestamp_ms": h.timestamp_ms,
        "proposer": h.proposer,
        "tx_root": h.tx_root.hex(),
        "state_root": h.state_root.hex(),
        "receipts_root": h.receipts_root.hex(),
        "tx_count": h.tx_count,
        "engine": h.engine.hex(),
    }


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {
        "tx_id": r.tx_id.hex(),
        "status": STATUS_NAMES.get(r.status, str(r.status)),
        "error": r.error,
        "steps": r.steps,
        "result": plain(r.result),
        "events": [{"contract": e.contract, "name": e.name, "payload": plain(e.payload)} for e in r.events],
    }


def tx_json(tx_id: bytes, tx: Transaction) -> dict[str, Any]:
    return {
        "tx_id": tx_id.hex(),
        "chain_id": tx.chain_id,
        "channel": tx.channel,
        "nonce": tx.nonce.hex(),
        "contract": tx.contract,
        "method": tx.method,
        "args": plain(tx.args),
        "expiry_height": tx.expiry_height,
        "signer_cert": base64.b64encode(tx.signer).decode(),
    }


def eth_tx_json(tx: EthTransaction) -> dict[str, Any]:
    return {
        "tx_id": tx.hash.hex(),
        "kind": "eth",
        "type": tx.tx_type,
        "chain_id": tx.chain_id,
        "from": "0x" + tx.sender.hex(),
        "to": None if tx.to is None else "0x" + tx.to.hex(),
        "nonce": tx.nonce,
        "gas": tx.gas,
        "value": str(tx.value),  # may exceed 2**53: a decimal string survives JSON readers
        "data": "0x" + tx.data.hex(),
    }


def committed_tx_json(raw: bytes) -> dict[str, Any]:
    """A transaction of either kind, as committed in a block (already checked on the way in)."""
    if tx_kind(raw) == "eth":
        return eth_tx_json(decode_eth_transaction(raw))
    env, tx = decode_envelope(raw)
    return tx_json(env.tx_id, tx)


def block_json(block: Block, with_txs: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header_json(block.header)}
    if with_txs and block.header.height > 0:
        out["transactions"] = [committed_tx_json(raw) for raw in block.txs]
    cert = block.certificate
    if cert is not None:
        out["certificate"] = {
            "height": cert.height,
            "block_hash": cert.block_hash.hex(),
            "signatures": [
                {
                    "signer_cert": base64.b64encode(s.signer).decode(),
                    "signature": s.signature.hex(),
                }
                for s in cert.signatures
            ],
        }
    return out
