"""Replays testdata/*.txt: each command, `----`, then exactly what the cluster did.

Commands:
  cluster n1 n2 n3 [param=int ...] [quorum=N]   start a cluster (params go to the engine)
  tick <node ...|all> <ms>                       advance clocks and step one Tick each
  txs <node> <count>                             set the node's pool size
  deliver [to=X] [from=Y] [n=K]                  deliver queued messages (not their replies)
  stabilize                                      deliver until no message is left
  drop [to=X] [from=Y]                           lose queued messages
  partition a b | c                              cut every link between the groups
  heal                                           restore all links
  crash <node> / restart <node>                  lose / rebuild an engine from persisted state
  sync <node> [from=Y]                           block sync: fetch blocks, one Committed
  config <node> add|remove <name>                the node's next block changes the validators
  start <node>                                   start a new node (validators as of its ledger)
  status [node ...] / log <node>                 print engine state

Set UPDATE_TRANSCRIPTS=1 to rewrite the expected output (then review the diff).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from raft_harness import Cluster

TESTDATA = Path(__file__).parent / "testdata"
SEPARATOR = "----"


@dataclass
class Case:
    preamble: list[str]
    command: str
    expected: list[str]


def parse(text: str) -> tuple[list[Case], list[str]]:
    cases: list[Case] = []
    lines = text.splitlines()
    preamble: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            preamble.append(line)
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1] != SEPARATOR:
            raise ValueError(f"line {i + 1}: command {line!r} is not followed by {SEPARATOR}")
        i += 2
        expected: list[str] = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        i += 1  # the blank line that ends the output belongs to the case
        cases.append(Case(preamble, line, expected))
        preamble = []
    return cases, preamble


def render(cases: list[Case], trailer: list[str]) -> str:
    out: list[str] = []
    for case in cases:
        out.extend(case.preamble)
        out.append(case.command)
        out.append(SEPARATOR)
        out.extend(case.expected)
        out.append("")
    out.extend(line for line in trailer if line.strip())
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out) + "\n"


def _kwargs(args: list[str]) -> tuple[list[str], dict[str, str]]:
    plain = [a for a in args if "=" not in a]
    kw = dict(a.split("=", 1) for a in args if "=" in a)
    return plain, kw


class Runner:
    def __init__(self) -> None:
        self.cluster: Cluster | None = None

    @property
    def c(self) -> Cluster:
        if self.cluster is None:
            raise ValueError("no cluster yet")
        return self.cluster

    def run(self, command: str) -> list[str]:
        words = command.split()
        name, args = words[0], words[1:]
        plain, kw = _kwargs(args)
        if name == "cluster":
            quorum = int(kw.pop("quorum", "1"))
            self.cluster = Cluster(plain, {k: int(v) for k, v in kw.items()}, quorum)
        elif name == "tick":
            targets = self.c.alive() if plain[0] == "all" else plain[:-1]
            for target in targets:
                self.c.tick(target, int(plain[-1]))
        elif name == "txs":
            self.c.nodes[plain[0]].pool = int(plain[1])
        elif name == "deliver":
            n = int(kw["n"]) if "n" in kw else None
            self.c.deliver(kw.get("to"), kw.get("from"), n)
        elif name == "stabilize":
            self.c.stabilize()
        elif name == "drop":
            self.c.drop(kw.get("to"), kw.get("from"))
        elif name == "partition":
            groups = [g.split() for g in " ".join(args).split("|")]
            self.c.partition(groups)
        elif name == "heal":
            self.c.heal()
        elif name == "crash":
            self.c.crash(plain[0])
        elif name == "restart":
            self.c.restart(plain[0])
            self.c.say(self.c.status_line(plain[0]))
        elif name == "sync":
            self.c.sync(plain[0], kw.get("from"))
        elif name == "config":
            node, op, who = plain
            current = set(self.c.config)
            new = current | {who} if op == "add" else current - {who}
            self.c.nodes[node].pending_config = tuple(sorted(new))
        elif name == "start":
            self.c.start(plain[0])
        elif name == "status":
            for target in plain or sorted(self.c.nodes):
                self.c.say(self.c.status_line(target))
        elif name == "log":
            self.c.say(self.c.log_line(plain[0]))
        else:
            raise ValueError(f"unknown command {name!r}")
        self.c.check_chains()
        return self.c.take_output() or ["ok"]


FILES = sorted(TESTDATA.glob("*.txt"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path: Path) -> None:
    cases, trailer = parse(path.read_text())
    assert cases, f"{path.name} has no commands"
    assert cases[0].preamble and cases[0].preamble[0].startswith("# Raft"), "cite the paper section first"
    runner = Runner()
    actual = [Case(c.preamble, c.command, runner.run(c.command)) for c in cases]
    if os.environ.get("UPDATE_TRANSCRIPTS") == "1":
        path.write_text(render(actual, trailer))
        return
    for want, got in zip(cases, actual, strict=True):
        assert got.expected == want.expected, f"{path.name}: after `{want.command}`"


def test_parse_render_round_trip() -> None:
    text = "# Raft paper §5.2: x\n\ncluster n1\n----\nok\n\n# later\nstatus\n----\nn1 a\nn1 b\n"
    cases, trailer = parse(text)
    assert [c.command for c in cases] == ["cluster n1", "status"]
    assert cases[1].expected == ["n1 a", "n1 b"]
    assert render(cases, trailer) == text
