"""Workload modules produce transactions the platform accepts: well-formed and validly signed."""

from __future__ import annotations

from pathlib import Path

import pytest

from consortia.bench.errors import BenchError
from consortia.bench.workload import BUILTIN, Call, client_identities, load_workload
from consortia.crypto import ED25519
from consortia.execution.sandbox.checker import check_source
from consortia.identity.cryptogen import generate_consortium
from consortia.sdk import sign_transaction
from consortia.types import check_value, decode_envelope, tx_signing_bytes


@pytest.fixture(scope="module")
def crypto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-crypto") / "crypto"
    generate_consortium(out, ["org1", "org2"], clients=2)
    return out


@pytest.mark.parametrize("name", [n for n in BUILTIN if n not in ("query", "erc20_transfer")])
def test_workload_txs_are_valid_and_signed(name: str, crypto: Path) -> None:
    workload = load_workload(name)
    senders = client_identities(crypto, ["org1", "org2"])
    assert [s.name for s in senders] == ["client0@org1", "client1@org1", "client0@org2", "client1@org2"]
    ids = set()
    for i in range(20):
        sender = senders[i % len(senders)]
        call = workload.call(1, i, sender)
        check_value(call.args)  # only values the canonical codec accepts
        signed = sign_transaction(sender, "chain", "main", call.contract, call.method, call.args)
        env, tx = decode_envelope(signed.raw)
        assert env.tx_id == signed.tx_id and tx.contract == call.contract
        assert tx.signer == sender.cert_der
        assert ED25519.verify(sender.key.public_key, tx_signing_bytes(env.tx_id), env.signature)
        ids.add(env.tx_id)
    assert len(ids) == 20


def test_query_workload_is_read_only() -> None:
    workload = load_workload("query")
    assert workload.read_only
    assert isinstance(workload.query(0, 3), Call)


def test_contract_source_passes_the_sandbox() -> None:
    from consortia.bench.workloads.kv_write import SOURCE

    check_source(SOURCE)


def test_a_copied_workload_file_loads(tmp_path: Path) -> None:
    src = Path(__file__).parents[2] / "src/consortia/bench/workloads/transfer.py"
    copy = tmp_path / "my_transfer.py"
    copy.write_text(src.read_text().replace('name = "transfer"', 'name = "my_transfer"'))
    assert load_workload(str(copy)).name == "my_transfer"


def test_bad_workloads_raise(tmp_path: Path) -> None:
    with pytest.raises(BenchError):
        load_workload("no_such_module_here")
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(BenchError):
        load_workload(str(empty))
