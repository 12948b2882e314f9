"""The checkers can fail: broken engines are caught, each by the checker meant for it."""

from __future__ import annotations

from consortia.sim import Checker, run, sweep


def kinds(result: object) -> set[str]:
    return {v.kind for v in getattr(result, "violations", ())}


def test_agreement_catches_nodes_committing_their_own_blocks() -> None:
    summary = sweep(range(5), "broken", 4)
    assert len(summary.failed) == 5
    for result in summary.failed:
        assert "agreement" in kinds(result)
        assert result.replay == f"consortia sim --engine broken --nodes 4 --seed {result.seed}"


def test_certificate_check_catches_a_quorum_of_one() -> None:
    result = run(1, "broken-strict", 4)
    assert kinds(result) >= {"certificate"}
    assert all("quorum is 3" in v.detail for v in result.violations if v.kind == "certificate")


def test_validity_catches_a_tampered_state_root() -> None:
    result = run(2, "tamper", 1)
    assert "validity" in kinds(result)
    assert any("state root" in v.detail for v in result.violations)


def test_liveness_catches_an_engine_that_never_commits() -> None:
    result = run(3, "stuck", 1)
    assert kinds(result) == {"liveness"}
    assert result.blocks_committed == 0 and result.recovery_ms is None


def test_an_engine_that_raises_is_reported_not_fatal() -> None:
    result = run(4, "crashy", 1)
    assert "engine_error" in kinds(result) and "liveness" in kinds(result)
    assert result.blocks_committed == 3
    assert any("height 3 reached" in v.detail for v in result.violations)


def test_a_message_type_missing_from_message_types_is_reported() -> None:
    result = run(5, "unlisted", 3)
    assert kinds(result) == {"bad_message"}
    assert result.faults["undecodable_messages"] > 0


def test_undone_and_agreement_from_the_checker_itself() -> None:
    c = Checker()
    c.on_durable("n0", True, 1, b"a" * 32, [b"t1"], 10)
    c.on_durable("n1", True, 1, b"b" * 32, [], 11)  # another honest node, another block
    c.on_durable("n0", True, 1, b"c" * 32, [], 12)  # n0 replaces its own block
    c.on_durable("n2", False, 1, b"d" * 32, [], 13)  # byzantine: not held to agreement
    assert [v.kind for v in c.violations] == ["agreement", "undone", "agreement"]


def test_durability_needs_acknowledged_txs_to_survive_restarts() -> None:
    c = Checker()
    c.on_durable("n0", True, 1, b"a" * 32, [b"t1", b"t2"], 10)
    c.check_durable("n0", {b"t1": 1, b"t2": 1}, 20)
    assert c.violations == []
    c.check_durable("n0", {b"t1": 1}, 30)
    assert [v.kind for v in c.violations] == ["durability"]
    c.on_disk_lost("n0")  # an emptied data directory takes its promises with it
    c.check_durable("n0", {}, 40)
    assert len(c.violations) == 1


def test_violations_per_kind_are_capped() -> None:
    c = Checker()
    for h in range(30):
        c.report("agreement", "n0", h, "x")
    assert len(c.violations) == 10 and c.suppressed == 20
