// A member's CLI wallet in the browser: the chain to add (EIP-3085) and how to import the key.
import { api } from "../api.js";
import { busy, header, showInfo } from "../ui.js";
import { addChain } from "../wallet.js";

header();
const config = await api("GET", "/config");
document.getElementById("chain-id").textContent = `${config.chain_id} (0x${config.chain_id.toString(16)})`;
const rpc = document.getElementById("rpc-url");
const button = document.getElementById("add-chain");
if (config.local_rpc_url) {
  rpc.textContent = config.local_rpc_url;
} else {
  rpc.textContent = "ask the operator (this marketplace runs on a chain it does not publish)";
  button.disabled = true;
}
button.addEventListener("click", (e) => busy(e.target, async () => {
  await addChain(config.chain_id, config.local_rpc_url);
  showInfo("The chain is in your wallet. Next: import the CLI wallet's key.");
}));
