// ethers.js WebSocketProvider against a consortia node: provider.on("block") (eth_subscribe
// newHeads) and a contract event listener (eth_subscribe logs). The transaction that makes
// the block goes to another node over HTTP. Run by tests/evm/test_clients_ethers.py:
//   node ethers_ws.js <config.json>
// config: {ws, rpc_other, key, contracts}. Prints one JSON document of what it saw.
'use strict';
const fs = require('fs');
const { ethers } = require('ethers');

const TIMEOUT_MS = 60000;

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const options = { pollingInterval: 100, cacheTimeout: -1 }; // see ethers_flow.js
  const ws = new ethers.WebSocketProvider(cfg.ws, undefined, options);
  const http = new ethers.JsonRpcProvider(cfg.rpc_other, undefined, options);
  http.on('block', () => {});
  const wallet = new ethers.Wallet(cfg.key, http);
  const { Probe } = cfg.contracts;

  const probe = await new ethers.ContractFactory(Probe.abi, Probe.bytecode, wallet).deploy();
  await probe.waitForDeployment();
  const address = await probe.getAddress();
  const start = await ws.getBlockNumber();

  const blocks = [];
  const sawBlock = new Promise((resolve) => {
    ws.on('block', (number) => {
      blocks.push(number);
      if (number > start) resolve();
    });
  });
  const watched = new ethers.Contract(address, Probe.abi, ws);
  const sawEvent = new Promise((resolve) => {
    watched.on('Stored', (key, value, event) => {
      resolve({ key: key.toString(), value: value.toString(), tx: event.log.transactionHash, block: event.log.blockNumber });
    });
  });
  // Let both subscriptions reach the node before the transaction is sent.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const tx = await probe.store(42n, 4242n);
  const receipt = await tx.wait();
  const event = await within(sawEvent, 'the Stored event');
  await within(sawBlock, 'a new block');
  // Both nodes hold the transaction's block: the WebSocket one announced its log, the
  // HTTP one gave its receipt.
  const head = await ws.getBlock(receipt.blockNumber);
  const viaHttp = await http.getBlock(receipt.blockNumber);
  process.stdout.write(
    JSON.stringify({
      start,
      blocks,
      receiptBlock: receipt.blockNumber,
      tx: tx.hash,
      event,
      head: { number: head.number, hash: head.hash, parentHash: head.parentHash },
      headViaHttp: { number: viaHttp.number, hash: viaHttp.hash, parentHash: viaHttp.parentHash },
    }),
  );
  await ws.destroy();
  http.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
