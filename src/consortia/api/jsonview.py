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


def block_json(block: Block, with_txs: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"header": header_json(block.header)}
    if with_txs and block.header.height > 0:
        txs = []
        for raw in block.txs:
            env, tx = decode_envelope(raw)
            txs.append(tx_json(env.tx_id, tx))
        out["transactions"] = txs
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
