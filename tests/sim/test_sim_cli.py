"""`consortia sim`: summary table or JSON, and exit code 1 exactly when a checker fails."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from consortia.cli.sim_cmd import sim

app = typer.Typer()
app.command("sim")(sim)


@app.command("other")
def _other() -> None:  # a second command keeps `sim` a named subcommand, as in `consortia`
    pass


runner = CliRunner()


def test_sweep_prints_a_summary_and_exits_zero() -> None:
    result = runner.invoke(app, ["sim", "--engine", "solo", "--nodes", "1", "--crashed", "1", "--seeds", "5"])
    assert result.exit_code == 0, result.output
    assert "runs" in result.output and "0 in 0" in result.output


def test_violations_exit_one_and_print_the_replay_command() -> None:
    result = runner.invoke(app, ["sim", "--engine", "broken", "--nodes", "4", "--seeds", "2", "--start", "7"])
    assert result.exit_code == 1
    assert "consortia sim --engine broken --nodes 4 --seed 7" in result.output
    assert "consortia sim --engine broken --nodes 4 --seed 8" in result.output


def test_one_seed_as_json_replays_exactly() -> None:
    args = ["sim", "--engine", "toy", "--nodes", "4", "--crashed", "1", "--seed", "9", "--json"]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.output), json.loads(second.output)
    assert a["trace_hash"] == b["trace_hash"] and a["violations"] == []
    assert a["replay"] == "consortia sim --engine toy --nodes 4 --crashed 1 --seed 9"


def test_sweep_json_lists_failures() -> None:
    result = runner.invoke(app, ["sim", "--engine", "broken", "--nodes", "3", "--seeds", "2", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["runs"] == 2 and data["failed_runs"] == 2
    assert [f["seed"] for f in data["failures"]] == [0, 1]


def test_bad_options_exit_two() -> None:
    for args in (
        ["--engine", "nope", "--nodes", "3"],
        ["--engine", "solo", "--nodes", "3"],
        ["--engine", "toy", "--nodes", "3", "--byzantine", "1"],
        ["--engine", "toy", "--nodes", "3", "--seeds", "0"],
    ):
        result = runner.invoke(app, ["sim", *args])
        assert result.exit_code == 2, (args, result.output)
