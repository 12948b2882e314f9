"""ethers.js, unchanged, against a running consortia network started by `consortia network up`.

The node scripts in clients/ drive the network and print what ethers saw as JSON; these
tests assert on it. Contracts are compiled by solc-js at test time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from consortia.types.eth import eth_address

from .clients_kit import (
    CLIENTS_DIR,
    EthNetwork,
    compile_contracts,
    network_up,
    permitted_accounts,
    run_script,
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EthNetwork]:
    compile_contracts()  # install and compile before the network's clock starts
    with network_up(tmp_path_factory.mktemp("ethers-net") / "net") as network:
        permitted_accounts(network, ["deployer", "recipient", "watcher"])
        yield network


def _config(tmp: Path, **fields: Any) -> str:
    contracts = {
        name: {"abi": c["abi"], "bytecode": "0x" + c["bytecode"]} for name, c in compile_contracts().items()
    }
    path = tmp / "config.json"
    path.write_text(json.dumps({"contracts": contracts, **fields}))
    return str(path)


def _checksum(key: bytes) -> str:
    return str(to_checksum_address(eth_address(key)))


@pytest.fixture(scope="module")
def flow(net: EthNetwork, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = _config(
        tmp_path_factory.mktemp("ethers-flow"),
        rpc=net.nodes[0].jsonrpc,
        rpc_other=net.nodes[-1].jsonrpc,
        key="0x" + net.keys["deployer"].hex(),
        recipient=_checksum(net.keys["recipient"]),
    )
    seen: dict[str, Any] = run_script(str(CLIENTS_DIR / "ethers_flow.js"), config)
    return seen


def test_ethers_deploys_a_solc_compiled_erc20(net: EthNetwork, flow: dict[str, Any]) -> None:
    assert flow["address"] == _checksum(net.keys["deployer"])
    token = flow["token"]
    assert token["receipt"]["status"] == 1 and token["receipt"]["contractAddress"] == token["address"]
    assert token["code"] == "0x" + compile_contracts()["Token"]["deployed"]
    assert (token["name"], token["symbol"], token["totalSupply"]) == ("Ethers Coin", "ETC", "1000000")


def test_ethers_transfers_and_reads_balances(net: EthNetwork, flow: dict[str, Any]) -> None:
    transfer = flow["transfer"]
    assert transfer["status"] == 1
    assert transfer["events"] == [
        {"name": "Transfer", "from": flow["address"], "to": _checksum(net.keys["recipient"]), "value": "1234"}
    ]
    assert int(transfer["gasUsed"]) > 21_000
    assert flow["balances"] == {
        "sender": str(1_000_000 - 1234),
        "recipient": "1234",
        "senderEther": "0",
        "nonce": 2,
    }
    assert flow["otherNode"] == {
        "blockHash": transfer["blockHash"],
        "sender": str(1_000_000 - 1234),
        "recipient": "1234",
    }


def test_ethers_query_filter_by_indexed_topic(flow: dict[str, Any]) -> None:
    assert flow["logs"] == {"ones": [["1", "10"], ["1", "11"]], "twos": ["20"], "all": 3}


def test_ethers_revert_reason(flow: dict[str, Any]) -> None:
    reverts = flow["reverts"]
    assert reverts["call"] == {"code": "CALL_EXCEPTION", "reason": "ethers says no", "status": None}
    assert reverts["send"] == {"code": "CALL_EXCEPTION", "reason": "undone", "status": None}
    assert reverts["mined"]["code"] == "CALL_EXCEPTION" and reverts["mined"]["status"] == 0
    assert reverts["slot4"] == "0"


def test_ethers_websocket_provider_sees_blocks_and_events(
    net: EthNetwork, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = _config(
        tmp_path_factory.mktemp("ethers-ws"),
        ws=net.nodes[0].jsonrpc_ws,
        rpc_other=net.nodes[-1].jsonrpc,
        key="0x" + net.keys["watcher"].hex(),
    )
    seen = run_script(str(CLIENTS_DIR / "ethers_ws.js"), config)
    assert (
        seen["blocks"] == sorted(seen["blocks"])
        and seen["blocks"][-1] >= seen["receiptBlock"] > seen["start"]
    )
    assert seen["event"] == {"key": "42", "value": "4242", "tx": seen["tx"], "block": seen["receiptBlock"]}
    assert seen["head"] == seen["headViaHttp"] and seen["head"]["number"] == seen["receiptBlock"]
    assert seen["head"]["hash"].startswith("0x") and len(seen["head"]["hash"]) == 66
