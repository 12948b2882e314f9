"""JSON-RPC over WebSocket (eth_subscribe newHeads and logs), and EVM transactions on the
native side: the block explorer endpoints and the native events stream."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect

from consortia.cli.main import app
from tests.node.conftest import Harness

from .evm_kit import ALICE, ALICE_KEY, BOB, TRANSFER_TOPIC, address_word, call_data, token_deploy_data
from .node_kit import permit
from .rpc_kit import Wallet, receipt, result, serve_node


class RpcSocket:
    """A JSON-RPC WebSocket client: answers by id, notifications by subscription."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.kept: list[dict[str, Any]] = []  # notifications that arrived before they were asked for

    async def recv(self) -> Any:
        return json.loads(await asyncio.wait_for(self.ws.recv(), 10))

    async def ask(self, method: str, *params: Any, rid: int = 1) -> dict[str, Any]:
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)})
        )
        while True:
            message = await self.recv()
            if message.get("id") == rid:
                answer: dict[str, Any] = message
                return answer
            self.kept.append(message)

    async def notifications(self, subscription: str, count: int) -> list[Any]:
        """The next `count` results of `subscription`, in order."""
        found = [m for m in self.kept if m["params"]["subscription"] == subscription]
        self.kept = [m for m in self.kept if m["params"]["subscription"] != subscription]
        while len(found) < count:
            message = await self.recv()
            assert message["jsonrpc"] == "2.0" and message["method"] == "eth_subscription", message
            (found if message["params"]["subscription"] == subscription else self.kept).append(message)
        self.kept = found[count:] + self.kept
        return [m["params"]["result"] for m in found[:count]]


def test_websocket_serves_methods_and_subscriptions(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness, ws_url: str) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)
        token_hex = (await alice.send_and_wait(None, token_deploy_data("Coin", "C", 100)))["contractAddress"]
        token = bytes.fromhex(token_hex[2:])
        async with connect(f"{ws_url}/jsonrpc") as socket:
            ws = RpcSocket(socket)
            # Every HTTP method works over the socket, batches included.
            assert (await ws.ask("eth_chainId"))["result"] == await result(h, "eth_chainId")
            await socket.send(
                json.dumps(
                    [
                        {"jsonrpc": "2.0", "id": 5, "method": "net_version"},
                        {"jsonrpc": "2.0", "id": 6, "method": "eth_nope"},
                    ]
                )
            )
            batch = await ws.recv()
            assert [a["id"] for a in batch] == [5, 6] and batch[1]["error"]["code"] == -32601
            assert (await ws.ask("eth_subscribe", "newPendingTransactions"))["error"]["code"] == -32602
            assert (await ws.ask("eth_subscribe", "logs", {"address": "0x12"}))["error"]["code"] == -32602
            await socket.send("{not json")
            assert (await ws.recv())["error"]["code"] == -32700

            heads = (await ws.ask("eth_subscribe", "newHeads"))["result"]
            logs = (
                await ws.ask(
                    "eth_subscribe",
                    "logs",
                    {"address": token_hex, "topics": [None, None, "0x" + address_word(BOB).hex()]},
                )
            )["result"]
            other_logs = (await ws.ask("eth_subscribe", "logs", {"address": "0x" + "00" * 20}))["result"]
            assert len({heads, logs, other_logs}) == 3 and heads.startswith("0x")

            sent = await alice.send_and_wait(token, call_data("transfer(address,uint256)", BOB, 3))
            height = int(sent["blockNumber"], 16)
            head = None
            while head is None or int(head["number"], 16) < height:
                (head,) = await ws.notifications(heads, 1)
            assert head["hash"] == sent["blockHash"] and head["logsBloom"] == sent["logsBloom"]
            assert head == {
                k: v
                for k, v in (await result(h, "eth_getBlockByHash", sent["blockHash"], False)).items()
                if k not in ("transactions", "uncles")
            }
            (log,) = await ws.notifications(logs, 1)
            assert log == sent["logs"][0] and log["topics"][0] == "0x" + TRANSFER_TOPIC.hex()

            assert (await ws.ask("eth_unsubscribe", logs))["result"] is True
            assert (await ws.ask("eth_unsubscribe", logs))["result"] is False
            again = await alice.send_and_wait(token, call_data("transfer(address,uint256)", BOB, 4))
            while head is None or int(head["number"], 16) < int(again["blockNumber"], 16):
                (head,) = await ws.notifications(heads, 1)
            # Nothing came for the dropped subscription, nor for the one no log matched.
            assert all(m["params"]["subscription"] == heads for m in ws.kept)
        # The connection's subscriptions went with it.
        await asyncio.sleep(0.1)
        assert not h.node._block_subscribers

    serve_node(evm_crypto_dir, tmp_path / "net", body)


def test_evm_transactions_appear_in_the_native_explorer_and_events_stream(
    evm_crypto_dir: Path, tmp_path: Path
) -> None:
    async def body(h: Harness, ws_url: str) -> None:
        await permit(h, ALICE, "org1")
        alice = await Wallet.of(h, ALICE_KEY)
        token_hex = (await alice.send_and_wait(None, token_deploy_data("Coin", "C", 100)))["contractAddress"]
        token = bytes.fromhex(token_hex[2:])
        events_url = f"{ws_url}/v1/channels/main/ws/events?contract=evm&name=log"
        async with connect(events_url) as events:
            await asyncio.sleep(0.2)  # the stream subscribes once the socket is open
            tx_hash = await alice.send(token, call_data("transfer(address,uint256)", BOB, 9))
            sent = await receipt(h, tx_hash)
            event = json.loads(await asyncio.wait_for(events.recv(), 10))
        assert event["type"] == "event" and event["tx_id"] == tx_hash[2:]
        assert event["height"] == int(sent["blockNumber"], 16)
        payload = event["payload"]
        assert base64.b64decode(payload["address"]["$bytes"]) == token
        topics = [base64.b64decode(t["$bytes"]) for t in payload["topics"]]
        assert topics == [TRANSFER_TOPIC, address_word(ALICE), address_word(BOB)]
        assert int.from_bytes(base64.b64decode(payload["data"]["$bytes"]), "big") == 9

        height = int(sent["blockNumber"], 16)
        block = (await h.http.get(f"/v1/channels/main/blocks/{height}")).json()
        by_hash = (await h.http.get(f"/v1/channels/main/blocks/hash/{sent['blockHash'][2:]}")).json()
        assert block == by_hash and block["header"]["hash"] == sent["blockHash"][2:]
        (listed,) = [t for t in block["transactions"] if t["tx_id"] == tx_hash[2:]]
        assert listed["kind"] == "eth" and listed["from"] == "0x" + ALICE.hex() and listed["to"] == token_hex
        assert listed["data"] == "0x" + call_data("transfer(address,uint256)", BOB, 9).hex()
        status = (await h.http.get(f"/v1/channels/main/transactions/{tx_hash[2:]}")).json()
        assert status["status"] == "committed" and status["height"] == height
        assert status["receipt"]["status"] == "ok" and status["receipt"]["steps"] == int(sent["gasUsed"], 16)
        assert [e["contract"] for e in status["receipt"]["events"]] == ["evm"]
        assert status["transaction"] == listed

        # The block command of the CLI shows both kinds (it blocks: run it beside the server).
        http_url = ws_url.replace("ws://", "http://")
        shown = await asyncio.to_thread(
            CliRunner().invoke, app, ["block", "get", str(height), "--url", http_url]
        )
        assert shown.exit_code == 0, shown.output
        assert f"eth 0x{ALICE.hex()} -> {token_hex} nonce 1" in shown.output

    serve_node(evm_crypto_dir, tmp_path / "net", body)


def test_websocket_messages_are_rate_limited_and_size_limited(evm_crypto_dir: Path, tmp_path: Path) -> None:
    async def body(h: Harness, ws_url: str) -> None:
        async with connect(f"{ws_url}/jsonrpc") as socket:
            ws = RpcSocket(socket)
            await socket.send(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "web3_sha3", "params": ["0x" + "00" * 300]})
            )
            big = await ws.recv()
            assert big["error"]["code"] == -32600 and "exceeds 400 bytes" in big["error"]["message"]
            answers = [await ws.ask("eth_chainId", rid=i) for i in range(2, 8)]
            assert answers[0]["result"].startswith("0x")
            refused = [a for a in answers if "error" in a]
            assert refused and {a["error"]["code"] for a in refused} == {-32005}

    serve_node(evm_crypto_dir, tmp_path / "net", body, rate_per_s=1, rate_burst=4, body_bytes_max=400)
