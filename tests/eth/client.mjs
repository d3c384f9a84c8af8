// An unmodified Ethereum client (ethers 6) and compiler (solcjs) against a
// gradnet node: a transfer, a Solidity contract deployed and called, its
// event read from the receipt and from eth_getLogs, a revert reason.
// With MODEL, also a contract written against OpenGradient's inference
// precompile, run through eth_call on that model, then in transactions in
// VANILLA, ZKML, TEE and QUORUM modes (served by the network's inference nodes); with
// RPCS (comma-separated URLs), the kept result as each of them has it.
// Usage: node client.mjs RPC_URL PRIVATE_KEY [MODEL]  (prints a JSON summary)
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { ethers } from "ethers";
import solc from "solc";

const [url, key, model] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const check = (cond, what) => {
  if (!cond) throw new Error(`check failed: ${what}`);
};

// cacheTimeout -1: ethers otherwise reuses answers for 250 ms (a nonce among
// them), shorter than a block here
const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 100, cacheTimeout: -1 });
if (process.env.GRADNET_ETH_DEBUG) provider.on("debug", (e) => console.error(JSON.stringify(e).slice(0, 400)));
const wallet = new ethers.Wallet(key, provider);
const network = await provider.getNetwork();

// a transfer
const to = ethers.Wallet.createRandom().address;
const sent = await wallet.sendTransaction({ to, value: ethers.parseEther("1.5") });
const paid = await sent.wait();
check(paid.status === 1, "transfer status");
check((await provider.getBalance(to)) === ethers.parseEther("1.5"), "recipient balance");

// compile and deploy
const compile = (file, name) => {
  const input = {
    language: "Solidity",
    sources: { [file]: { content: readFileSync(join(here, file), "utf8") } },
    settings: { evmVersion: "cancun", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  check(errors.length === 0, JSON.stringify(errors));
  return out.contracts[file][name];
};
const { abi, evm } = compile("Counter.sol", "Counter");
const factory = new ethers.ContractFactory(abi, evm.bytecode.object, wallet);
const counter = await factory.deploy();
await counter.waitForDeployment();
const address = await counter.getAddress();
check((await provider.getCode(address)).length > 2, "deployed code");

// call, event in the receipt, state, logs
const receipt = await (await counter.increment(5)).wait();
check(receipt.status === 1, "increment status");
const events = receipt.logs.map((l) => counter.interface.parseLog(l)).filter(Boolean);
check(events.length === 1 && events[0].name === "Incremented", "event in receipt");
check(events[0].args.newCount === 5n && events[0].args.by === wallet.address, "event args");
check((await counter.count()) === 5n, "count after increment");
const topic = counter.interface.getEvent("Incremented").topicHash;
const logs = await provider.getLogs({ address, topics: [topic], fromBlock: 0 });
check(logs.length === 1 && logs[0].transactionHash === receipt.hash, "eth_getLogs");

// a revert reason through eth_call
let reason = null;
try {
  await counter.increment.staticCall(0);
} catch (e) {
  reason = e.reason;
}
check(reason === "by must be positive", `revert reason: ${reason}`);

// a contract calling a model through the inference precompile
let prediction = null;
if (model) {
  const c = compile("Classifier.sol", "Classifier");
  const classifier = await new ethers.ContractFactory(c.abi, c.evm.bytecode.object, wallet).deploy(model);
  await classifier.waitForDeployment();
  const [out, outDecimals, simulated] = await classifier.predict.staticCall([5n, -10n, 25n, 300n], 2n);
  prediction = { values: out.map(String), decimals: outDecimals.map(String), simulated };
  prediction.tx = {};
  for (const mode of [0, 1, 2, 3]) {
    const r = await (await classifier.predictAndStore(mode, [5n, -10n, 25n, 300n], 2n)).wait();
    check(r.status === 1, `predictAndStore(${mode}) status`);
    const ev = r.logs.map((l) => classifier.interface.parseLog(l)).filter(Boolean).find((e) => e.name === "Predicted");
    check(ev, `Predicted event for mode ${mode}`);
    const kept = [];
    for (const u of (process.env.RPCS || url).split(",")) {
      const p = new ethers.JsonRpcProvider(u, undefined, { cacheTimeout: -1 });
      while ((await p.getBlockNumber()) < r.blockNumber) await new Promise((ok) => setTimeout(ok, 50));
      const view = new ethers.Contract(await classifier.getAddress(), c.abi, p);
      const [o, d, s] = await view.last();
      kept.push({ values: o.map(String), decimals: d.map(String), simulated: s });
    }
    prediction.tx[mode] = {
      values: ev.args.out.map(String),
      decimals: ev.args.outDecimals.map(String),
      simulated: ev.args.simulated,
      block: r.blockNumber,
      kept,
    };
  }
}

console.log(
  JSON.stringify({
    prediction,
    chainId: Number(network.chainId),
    transfer: paid.hash,
    contract: address,
    increment: receipt.hash,
    block: receipt.blockNumber,
  })
);
