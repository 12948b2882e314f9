// ethers.js, unchanged, against a consortia node: deploy, transfer, balances, receipts,
// logs by topic and revert reasons. Run by tests/evm/test_clients_ethers.py:
//   node ethers_flow.js <config.json>
// config: {rpc, rpc_other, key, recipient, contracts} (contracts: compiled by compile.js).
// Prints one JSON document of what the client saw; the test asserts on it.
'use strict';
const fs = require('fs');
const { ethers } = require('ethers');

// consortia commits a transaction within milliseconds and makes a block only when
// transactions arrive, while ethers' defaults suit a chain with a block every few seconds:
// - it answers identical requests made within 250 ms from a cache, so a receipt looked up
//   just before its block commits still reads as "not yet" when that block is announced;
// - a wait starts its block poller on demand, and the poller's first answer only sets its
//   starting point: a block committed just before that is never announced.
// Either way, with no later block, tx.wait() never returns. So: no cache, poll often, and
// keep one block listener for the provider's life (see docs/ethereum.md).
const PROVIDER_OPTIONS = { pollingInterval: 100, cacheTimeout: -1 };

function provider(url) {
  const p = new ethers.JsonRpcProvider(url, undefined, PROVIDER_OPTIONS);
  p.on('block', () => {});
  return p;
}

// The receipt once the node has it. provider.waitForTransaction re-arms a one-shot block
// listener after each check, so when a node that lagged announces several blocks at once it
// can miss the one it needed and then wait for a block that never comes; tx.wait() keeps
// its listener and has no such gap.
async function receiptOn(p, hash, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const receipt = await p.getTransactionReceipt(hash);
    if (receipt) return receipt;
    if (Date.now() > deadline) throw new Error(`no receipt for ${hash} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return { code: e.code, reason: e.reason ?? null, status: e.receipt ? e.receipt.status : null };
  }
  throw new Error('expected the call to fail');
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const rpc = provider(cfg.rpc);
  const other = provider(cfg.rpc_other); // another node, to read the same state from
  const wallet = new ethers.Wallet(cfg.key, rpc);
  const address = wallet.address;
  const out = { address, chainId: (await rpc.getNetwork()).chainId.toString() };

  const { Token, Probe } = cfg.contracts;
  const token = await new ethers.ContractFactory(Token.abi, Token.bytecode, wallet).deploy('Ethers Coin', 'ETC', 1000000n);
  await token.waitForDeployment();
  const deployReceipt = await token.deploymentTransaction().wait();
  out.token = {
    address: await token.getAddress(),
    receipt: { status: deployReceipt.status, contractAddress: deployReceipt.contractAddress, blockNumber: deployReceipt.blockNumber },
    code: await rpc.getCode(await token.getAddress()),
    name: await token.name(),
    symbol: await token.symbol(),
    totalSupply: (await token.totalSupply()).toString(),
  };

  const tx = await token.transfer(cfg.recipient, 1234n);
  const receipt = await tx.wait();
  out.transfer = {
    hash: tx.hash,
    type: tx.type,
    status: receipt.status,
    blockNumber: receipt.blockNumber,
    blockHash: receipt.blockHash,
    gasUsed: receipt.gasUsed.toString(),
    events: receipt.logs.map((log) => {
      const parsed = token.interface.parseLog(log);
      return { name: parsed.name, from: parsed.args.from, to: parsed.args.to, value: parsed.args.value.toString() };
    }),
  };
  out.balances = {
    sender: (await token.balanceOf(address)).toString(),
    recipient: (await token.balanceOf(cfg.recipient)).toString(),
    senderEther: (await rpc.getBalance(address)).toString(),
    nonce: await rpc.getTransactionCount(address),
  };
  // Another node has executed the same block: same balances there.
  const otherReceipt = await receiptOn(other, tx.hash);
  const replica = new ethers.Contract(await token.getAddress(), Token.abi, other);
  out.otherNode = {
    blockHash: otherReceipt.blockHash,
    sender: (await replica.balanceOf(address)).toString(),
    recipient: (await replica.balanceOf(cfg.recipient)).toString(),
  };

  const probe = await new ethers.ContractFactory(Probe.abi, Probe.bytecode, wallet).deploy();
  await probe.waitForDeployment();
  const from = (await probe.deploymentTransaction().wait()).blockNumber;
  for (const [key, value] of [[1n, 10n], [2n, 20n], [1n, 11n]]) await (await probe.store(key, value)).wait();
  const ones = await probe.queryFilter(probe.filters.Stored(1n), from);
  const twos = await rpc.getLogs({
    address: await probe.getAddress(),
    fromBlock: from,
    topics: [ethers.id('Stored(uint256,uint256)'), ethers.zeroPadValue(ethers.toBeHex(2), 32)],
  });
  out.logs = {
    ones: ones.map((e) => [e.args.key.toString(), e.args.value.toString()]),
    twos: twos.map((log) => probe.interface.parseLog(log).args.value.toString()),
    all: (await probe.queryFilter('Stored', from)).length,
  };

  const call = await failure(probe.fail('ethers says no'));
  const send = await failure(probe.storeThenFail(3n));
  // With a gas limit nothing estimates: the transaction is mined, with status 0.
  const mined = await failure((await probe.storeThenFail(4n, { gasLimit: 200000n })).wait());
  out.reverts = { call, send, mined, slot4: (await probe.slots(4n)).toString() };
  process.stdout.write(JSON.stringify(out));
  rpc.destroy();
  other.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
