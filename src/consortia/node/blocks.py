"""Building, executing and committing blocks. Runs on the node's single commit thread.

Everything here touches the ledger, so it runs on one thread only; the asyncio side hands
jobs over in order and hears back through futures.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from consortia.crypto import BatchVerifier, merkle_root
from consortia.execution.executor import BlockOutcome, Executor, TxInput
from consortia.identity.msp import MSP, IdentityError
from consortia.ledger.store import BodyDigests, Ledger, PreparedState
from consortia.node.admission import signature_job
from consortia.node.committed import CommittedTxIds
from consortia.node.verified import VerifiedTxs
from consortia.types import (
    Block,
    ChannelConfig,
    CodecError,
    CommitCertificate,
    Header,
    decode_envelope,
)
from consortia.types.eth import decode_eth_transaction, tx_kind

EXECUTED_CACHE_MAX = 64


class BlockRejected(Exception):
    """A peer's block does not execute to the roots its header claims (or is malformed)."""


class ForkDetected(Exception):
    """Two different blocks were certified for one height: the fault model was exceeded."""


@dataclass(frozen=True)
class Executed:
    block: Block
    outcome: BlockOutcome
    prepared: PreparedState
    # The block's tx ids and roots as computed while building or checking it, so the
    # ledger's commit need not compute them again.
    digests: BodyDigests


class BlockProcessor:
    """`verified` holds transactions admission already checked (see node.verified);
    `committed` answers the replay question from memory and learns each committed block."""

    def __init__(
        self,
        ledger: Ledger,
        executor: Executor,
        verifier: BatchVerifier,
        verified: VerifiedTxs | None = None,
        committed: CommittedTxIds | None = None,
    ) -> None:
        self.ledger = ledger
        self.executor = executor
        self.verifier = verifier
        self.verified = verified if verified is not None else VerifiedTxs()
        self.committed = (
            committed if committed is not None else CommittedTxIds(ledger.has_tx, ledger.tx_ids())
        )
        self._executed: OrderedDict[bytes, Executed] = OrderedDict()
        self._msp_cached: MSP | None = None
        self._msp_config: ChannelConfig | None = None

    def build(
        self,
        config: ChannelConfig,
        proposer: str,
        height: int,
        parent_hash: bytes,
        timestamp_ms: int,
        inputs: list[TxInput],
        raws: list[bytes],
        engine_data: bytes,
    ) -> Block:
        if len(inputs) != len(raws):
            raise ValueError(f"{len(inputs)} decoded transactions for {len(raws)} raw ones")
        self.verified.forget(raws)  # this node's own pool: checked at admission, never met again
        outcome = self.executor.execute_block(
            self.ledger.state, config, height, timestamp_ms, inputs, self.committed.__contains__
        )
        prepared = self.ledger.prepare(outcome.writes)
        digests = BodyDigests(
            [i.tx_id for i in inputs],
            merkle_root(raws),
            merkle_root(outcome.encoded_receipts),
            outcome.encoded_receipts,
        )
        header = Header(
            chain_id=config.chain_id,
            channel=config.channel,
            height=height,
            parent_hash=parent_hash,
            timestamp_ms=timestamp_ms,
            proposer=proposer,
            tx_root=digests.tx_root,
            state_root=prepared.root,
            receipts_root=digests.receipts_root,
            tx_count=len(raws),
            engine=engine_data,
        )
        block = Block(header, raws)
        self._remember(Executed(block, outcome, prepared, digests))
        return block

    def execute(self, config: ChannelConfig, block: Block) -> Executed:
        """Execute a peer's block on the committed state and check every root it claims.

        Raises BlockRejected.
        """
        cached = self._executed.get(block.hash)
        if cached is not None and cached.prepared.base_height == self.ledger.height:
            return cached
        h = block.header
        if h.height != self.ledger.height + 1 or h.parent_hash != self.ledger.head_hash:
            raise BlockRejected(f"block {h.height} does not extend the committed head {self.ledger.height}")
        if h.chain_id != config.chain_id or h.channel != config.channel or h.tx_count != len(block.txs):
            raise BlockRejected("block header does not belong to this channel")
        head = self.ledger.head
        if head is not None and h.timestamp_ms < head.timestamp_ms:
            raise BlockRejected("block timestamp goes backwards")
        if merkle_root(block.txs) != h.tx_root:
            raise BlockRejected("transactions do not match the tx root")
        inputs = self._verified_inputs(config, block)
        outcome = self.executor.execute_block(
            self.ledger.state, config, h.height, h.timestamp_ms, inputs, self.committed.__contains__
        )
        prepared = self.ledger.prepare(outcome.writes)
        if prepared.root != h.state_root:
            raise BlockRejected("execution gives a different state root than the header claims")
        if merkle_root(outcome.encoded_receipts) != h.receipts_root:
            raise BlockRejected("execution gives different receipts than the header claims")
        # Both roots were just checked against these very txs and receipts.
        digests = BodyDigests([i.tx_id for i in inputs], h.tx_root, h.receipts_root, outcome.encoded_receipts)
        executed = Executed(block, outcome, prepared, digests)
        self._remember(executed)
        return executed

    def _msp(self, config: ChannelConfig) -> MSP:
        """One MSP per channel config, so parsed and chain-checked certificates stay cached."""
        cached = self._msp_cached
        if cached is None or self._msp_config is not config:
            cached = MSP(config) if cached is None else cached.with_config(config)
            self._msp_cached, self._msp_config = cached, config
        return cached

    def _verified_inputs(self, config: ChannelConfig, block: Block) -> list[TxInput]:
        """The block's transactions, decoded, with every native signature verified.

        Transactions this node already checked at admission (the same bytes) are neither
        decoded nor verified again. Raises BlockRejected.
        """
        msp = self._msp(config)
        inputs: list[TxInput] = []
        jobs = []
        for raw in block.txs:
            known = self.verified.take(raw)
            if known is not None:
                inputs.append(known)
                continue
            try:
                if tx_kind(raw) == "eth":
                    # Recovering the sender verifies the signature; the executor checks the
                    # chain id (an invalid receipt, like a native wrong chain).
                    eth_tx = decode_eth_transaction(raw)
                    inputs.append(TxInput(eth_tx.hash, eth_tx))
                    continue
            except CodecError as exc:  # EthTxError is a CodecError
                raise BlockRejected(f"malformed transaction in block: {exc}") from exc
            try:
                env, tx = decode_envelope(raw)
            except CodecError as exc:
                raise BlockRejected(f"malformed transaction in block: {exc}") from exc
            tx_id = env.tx_id
            try:
                ident = msp.validate(tx.signer, block.header.timestamp_ms)
            except IdentityError:
                # The executor records an invalid receipt for it; the signature is moot.
                inputs.append(TxInput(tx_id, tx, True))
                continue
            jobs.append(signature_job(ident.suite, ident.public_key, tx_id, env.signature))
            inputs.append(TxInput(tx_id, tx, True))
        if not all(self.verifier.verify(jobs)):
            raise BlockRejected("a transaction signature in the block does not verify")
        return inputs

    def commit(self, config: ChannelConfig, block: Block, certificate: CommitCertificate) -> Executed | None:
        """Execute (unless already done on this state) and durably commit.

        Returns None when this very block is already committed (consensus and block sync
        may both deliver it). Raises BlockRejected, or ForkDetected when a different block
        is committed at that height: a safety violation that must stop the node.
        """
        height = block.header.height
        if height <= self.ledger.height:
            have = self.ledger.block(height)
            if have is not None and have.hash == block.hash:
                return None
            raise ForkDetected(f"a different block is already committed at height {height}")
        executed = self.execute(config, block)
        final = Block(block.header, block.txs, certificate)
        self.ledger.commit(final, executed.outcome.receipts, executed.prepared, executed.digests)
        self.committed.add_committed(executed.digests.tx_ids)  # the receipts' ids, as the ledger checked
        self._executed.pop(block.hash, None)
        return Executed(final, executed.outcome, executed.prepared, executed.digests)

    def _remember(self, executed: Executed) -> None:
        self._executed[executed.block.hash] = executed
        while len(self._executed) > EXECUTED_CACHE_MAX:
            self._executed.popitem(last=False)
