"""The simulated consortium: node and client keys, signed transactions, blocks and their rules.

Node identities are raw Ed25519 keys derived from the seed, with stand-in certificate bytes
(`b"sim-node/" + name + public key`) instead of X.509 certificates: certificates would cost
a CA and a parse per run and prove nothing about consensus, while every signature (client
transactions, commit certificates) is a real Ed25519 signature that the checkers verify.

The execution rule is a stand-in too, cheap but strict: a block's state root is
`sha256(domain || parent state root || its transaction ids)`, its transactions root is the
Merkle root of the envelopes, and a transaction may appear only once in a chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consortia.consensus.interface import BlockSigner, Peer
from consortia.crypto import ED25519, ZERO_HASH, PrivateKey, merkle_root, sha256
from consortia.types import (
    Block,
    CodecError,
    CommitCertificate,
    Envelope,
    Header,
    Transaction,
    commit_signing_bytes,
    decode_envelope,
    encode,
    tx_signing_bytes,
)

CHAIN_ID = "sim"
CHANNEL = "main"
STATE_DOMAIN = b"consortia/sim/state\x00"


def _key(seed: int, role: bytes, name: str) -> PrivateKey:
    raw = sha256(b"consortia/sim/key\x00" + seed.to_bytes(8, "big") + role + name.encode())
    return ED25519.private_from_bytes(raw)


def node_names(nodes: int) -> tuple[str, ...]:
    """Names that sort in index order, so `peers` (sorted by name) matches node indices."""
    width = len(str(nodes - 1))
    return tuple(f"n{i:0{width}d}" for i in range(nodes))


@dataclass(frozen=True)
class SimPeer(Peer):
    """A Peer whose verifications are remembered for the run.

    Verification is a pure function of (key, message, signature), so the memo changes no
    outcome; it only spares each broadcast being verified once per receiving node.
    """

    memo: dict[tuple[bytes, bytes], bool] = field(default_factory=dict, compare=False, repr=False)

    def verify(self, message: bytes, signature: bytes) -> bool:
        key = (message, signature)
        ok = self.memo.get(key)
        if ok is None:
            ok = super().verify(message, signature)
            self.memo[key] = ok
        return ok


@dataclass(frozen=True)
class Consortium:
    seed: int
    names: tuple[str, ...]
    peers: tuple[Peer, ...]
    signers: tuple[BlockSigner, ...]
    client_keys: tuple[PrivateKey, ...]
    client_certs: tuple[bytes, ...]
    genesis: Block

    @classmethod
    def create(cls, seed: int, nodes: int, clients: int) -> Consortium:
        names = node_names(nodes)
        peers: list[Peer] = []
        signers: list[BlockSigner] = []
        for i, name in enumerate(names):
            key = _key(seed, b"node", name)
            cert = b"sim-node/" + name.encode() + b"/" + key.public_key
            peers.append(SimPeer(name, f"org{i}", cert, ED25519.name, key.public_key))
            signers.append(BlockSigner(cert, key))
        keys = tuple(_key(seed, b"client", str(c)) for c in range(clients))
        certs = tuple(b"sim-client/" + k.public_key for k in keys)
        header = Header(
            chain_id=CHAIN_ID,
            channel=CHANNEL,
            height=0,
            parent_hash=ZERO_HASH,
            timestamp_ms=0,
            proposer="",
            tx_root=ZERO_HASH,
            state_root=sha256(b"consortia/sim/genesis\x00" + seed.to_bytes(8, "big")),
            receipts_root=ZERO_HASH,
            tx_count=0,
        )
        return cls(seed, names, tuple(peers), tuple(signers), keys, certs, Block(header, []))

    def make_tx(self, client: int, counter: int, nonce: bytes) -> tuple[bytes, bytes]:
        """A signed transfer-like transaction: (tx id, encoded envelope)."""
        key = self.client_keys[client]
        tx = Transaction(CHAIN_ID, CHANNEL, nonce, self.client_certs[client], "sim", "put", [client, counter])
        payload = encode(tx)
        env = Envelope(payload, key.sign(tx_signing_bytes(sha256(payload))))
        return env.tx_id, encode(env)


def state_root(parent_root: bytes, tx_ids: list[bytes]) -> bytes:
    return sha256(STATE_DOMAIN + parent_root + b"".join(tx_ids))


def build_block(
    parent: Header,
    height: int,
    timestamp_ms: int,
    proposer: str,
    txs: list[tuple[bytes, bytes]],
    engine_data: bytes,
) -> Block:
    ids = [t[0] for t in txs]
    raws = [t[1] for t in txs]
    header = Header(
        chain_id=CHAIN_ID,
        channel=CHANNEL,
        height=height,
        parent_hash=parent.hash,
        timestamp_ms=max(timestamp_ms, parent.timestamp_ms),
        proposer=proposer,
        tx_root=merkle_root(raws),
        state_root=state_root(parent.state_root, ids),
        receipts_root=merkle_root(ids),
        tx_count=len(raws),
        engine=engine_data,
    )
    return Block(header, raws)


class TxVerifier:
    """Checks a transaction's signature against the simulated clients, once per envelope."""

    def __init__(self, consortium: Consortium):
        self._client_keys = {
            cert: k.public_key
            for cert, k in zip(consortium.client_certs, consortium.client_keys, strict=True)
        }
        self._seen: dict[bytes, bytes | None] = {}  # raw envelope -> tx id, None when invalid

    def tx_id(self, raw: bytes) -> bytes | None:
        """The id of a well-formed, correctly signed client transaction, else None."""
        if raw in self._seen:
            return self._seen[raw]
        out: bytes | None = None
        try:
            env, tx = decode_envelope(raw)
        except CodecError:
            env = None
        if env is not None:
            pub = self._client_keys.get(tx.signer)
            if pub is not None and ED25519.verify(pub, tx_signing_bytes(env.tx_id), env.signature):
                out = env.tx_id
        self._seen[raw] = out
        return out


def check_block(
    block: Block, parent: Header, verifier: TxVerifier, proposers: tuple[str, ...]
) -> tuple[str | None, list[bytes]]:
    """Execute `block` on `parent`: (None, tx ids) when it is valid, else (reason, [])."""
    h = block.header
    if h.chain_id != CHAIN_ID or h.channel != CHANNEL:
        return "wrong chain", []
    if h.height != parent.height + 1 or h.parent_hash != parent.hash:
        return "does not extend its parent", []
    if h.timestamp_ms < parent.timestamp_ms:
        return "timestamp before its parent's", []
    if h.proposer not in proposers:
        return "proposer is not a validator", []
    if h.tx_count != len(block.txs) or h.tx_root != merkle_root(block.txs):
        return "transactions root mismatch", []
    ids: list[bytes] = []
    for raw in block.txs:
        tx_id = verifier.tx_id(raw)
        if tx_id is None:
            return "transaction not signed by a client", []
        ids.append(tx_id)
    if len(set(ids)) != len(ids):
        return "duplicate transaction", []
    if h.state_root != state_root(parent.state_root, ids) or h.receipts_root != merkle_root(ids):
        return "state root mismatch", []
    return None, ids


class CertificateVerifier:
    """Checks commit certificates: `quorum` distinct validators, every signature valid."""

    def __init__(self, peers: tuple[Peer, ...], quorum: int):
        self._by_cert = {p.cert_der: p for p in peers}
        self.quorum = quorum
        self._sigs: dict[tuple[bytes, bytes, bytes], bool] = {}

    def problem(self, block: Block, cert: CommitCertificate | None) -> str | None:
        """None when `cert` certifies `block`, else what is wrong with it."""
        if cert is None:
            return "no certificate"
        if cert.height != block.header.height or cert.block_hash != block.hash:
            return "certificate is for another block"
        signers: set[bytes] = set()
        for sig in cert.signatures:
            peer = self._by_cert.get(sig.signer)
            if peer is None:
                return "signer is not a validator"
            if sig.signer in signers:
                continue  # a repeated signer adds nothing
            key = (sig.signer, cert.block_hash, sig.signature)
            ok = self._sigs.get(key)
            if ok is None:
                ok = peer.verify(commit_signing_bytes(cert.block_hash), sig.signature)
                self._sigs[key] = ok
            if not ok:
                return f"bad signature by {peer.name}"
            signers.add(sig.signer)
        if len(signers) < self.quorum:
            return f"{len(signers)} signers, quorum is {self.quorum}"
        return None
