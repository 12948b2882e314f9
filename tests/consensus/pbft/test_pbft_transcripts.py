"""Replays tests/consensus/pbft/testdata/*.txt against the PBFT engine and diffs the output.

Each file is a sequence of commands, each followed by `----` and the exact expected output
(`ok` when a command prints nothing). Run with UPDATE_TRANSCRIPTS=1 to rewrite the expected
output from what the engine does now; review the diff before keeping it.

Commands:
  cluster n=4 [param=value ...]     start a cluster (engine params; commit_quorum, txs_max, wait_ms)
  txs N [X,Y]                       N transactions arrive in every live node's pool (or X's, Y's)
  tick MS                           advance the clock by MS and tick every live node once
  deliver|drop [from=X] [to=Y] [type=T]   deliver (once) or lose the queued messages that match
  stabilize                         deliver until the network is empty
  crash X | restart X               stop a node (messages to it are lost) / rebuild it from disk
  silence X | unsilence X           everything X sends is lost (it still receives)
  partition A B | C D  /  heal      split the network / join it again
  byzantine X                       X stops running its engine; `inject` speaks for it
  inject X Y[,Z] KIND v=V s=S block=L [invalid] [bad-sig]   X sends a crafted, signed message
  sync X [jump]                     block sync: X fetches certified blocks from the longest chain
  status X [Y ...]                  view, primary, height, stable checkpoint, drops
  chain X [Y ...]                   the committed chain, as height:hash
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pbft_harness import Cluster, describe, short

TESTDATA = Path(__file__).parent / "testdata"
HARNESS_KEYS = {"commit_quorum", "txs_max", "wait_ms"}


def _kv(args: list[str]) -> tuple[dict[str, str], list[str]]:
    pairs = dict(a.split("=", 1) for a in args if "=" in a)
    flags = [a for a in args if "=" not in a]
    return pairs, flags


def _matcher(args: list[str]) -> Callable[[str, str, object], bool]:
    want, _ = _kv(args)

    def match(src: str, dst: str, message: object) -> bool:
        return (
            want.get("from", src) == src
            and want.get("to", dst) == dst
            and want.get("type", describe(message).split()[0]) == describe(message).split()[0]
        )

    return match


class Runner:
    def __init__(self) -> None:
        self.cluster: Cluster | None = None

    @property
    def c(self) -> Cluster:
        assert self.cluster is not None, "the transcript must start with `cluster`"
        return self.cluster

    def run(self, command: str) -> list[str]:
        verb, *args = command.split()
        if verb == "cluster":
            pairs, _ = _kv(args)
            n = int(pairs.pop("n", "4"))
            harness = {k: int(pairs.pop(k)) for k in list(pairs) if k in HARNESS_KEYS}
            self.cluster = Cluster(n, params={k: int(v) for k, v in pairs.items()}, **harness)
            return []
        c = self.c
        if verb == "txs":
            c.txs(int(args[0]), args[1].split(",") if len(args) > 1 else None)
        elif verb == "tick":
            c.tick(int(args[0]))
        elif verb == "deliver":
            c.deliver(_matcher(args))
        elif verb == "drop":
            c.drop(_matcher(args))
        elif verb == "stabilize":
            c.stabilize()
        elif verb == "crash":
            c.crash(args[0])
        elif verb == "restart":
            c.restart(args[0])
        elif verb == "silence":
            c.silenced.add(args[0])
        elif verb == "unsilence":
            c.silenced.discard(args[0])
        elif verb == "partition":
            groups = " ".join(args).split("|")
            c.groups = [set(g.split()) for g in groups]
        elif verb == "heal":
            c.groups = None
        elif verb == "byzantine":
            c.make_byzantine(args[0])
        elif verb == "inject":
            self._inject(args)
        elif verb == "sync":
            c.sync(args[0], jump="jump" in args[1:])
        elif verb == "status":
            return [self._status(name) for name in args]
        elif verb == "chain":
            return [
                f"{name}: " + " ".join(f"{b.header.height}:{short(b.hash)}" for b in c.nodes[name].chain)
                for name in args
            ]
        else:
            raise ValueError(f"unknown command {verb!r}")
        lines: list[str] = c.take_lines()
        return lines

    def _inject(self, args: list[str]) -> None:
        sender, to, kind, *rest = args
        pairs, flags = _kv(rest)
        view, seq = int(pairs.get("v", "0")), int(pairs.get("s", "1"))
        block = self.c.block_for(pairs.get("block", "A"), seq, view, sender, valid="invalid" not in flags)
        message = self.c.forge(sender, kind, view, seq, block, bad_sig="bad-sig" in flags)
        self.c.inject(sender, to.split(","), message)

    def _status(self, name: str) -> str:
        s = self.c.engine(name).status()
        fields = [
            "view",
            "primary",
            "height",
            "stable_checkpoint",
            "view_changing",
            "timeout_ms",
            "dropped_msgs",
        ]
        text = " ".join(f"{k}={s[k]}" for k in fields)
        reasons = self.c.engine(name).drop_reasons()
        if reasons:
            text += " (" + " ".join(f"{k}={v}" for k, v in reasons.items()) + ")"
        return f"{name}: {text}"


def parse(text: str) -> list[tuple[str, list[str]] | str]:
    """Items: a comment/blank line (str), or (command, expected output lines)."""
    lines = text.splitlines()
    items: list[tuple[str, list[str]] | str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            items.append(line)
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1] != "----":
            raise ValueError(f"line {i + 1}: command {line!r} is not followed by ----")
        j = i + 2
        expected: list[str] = []
        while j < len(lines) and lines[j].strip():
            expected.append(lines[j])
            j += 1
        items.append((line, expected))
        i = j
    return items


def render(items: list[tuple[str, list[str]] | str]) -> str:
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        else:
            out.extend([item[0], "----", *item[1]])
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path) -> None:
    items = parse(path.read_text())
    first = next(i for i in items if not isinstance(i, str))
    assert isinstance(first, tuple) and first[0].split()[0] == "cluster"
    assert any(isinstance(i, str) and i.startswith("# ") and "§" in i for i in items[:3]), (
        "cite the paper section this transcript checks on its first lines"
    )
    runner = Runner()
    actual: list[tuple[str, list[str]] | str] = []
    for item in items:
        if isinstance(item, str):
            actual.append(item)
        else:
            actual.append((item[0], runner.run(item[0]) or ["ok"]))
    if os.environ.get("UPDATE_TRANSCRIPTS"):
        path.write_text(render(actual))
        return
    assert render(actual) == render(items)
