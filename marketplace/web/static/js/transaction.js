// A member's own transaction: the marketplace prepares it, the wallet signs it, the marketplace relays it.
import { api } from "./api.js";
import { showInfo } from "./ui.js";
import { signTransaction } from "./wallet.js";

export async function sendTransaction(address, body) {
  const tx = await api("POST", "/tx/prepare", { json: body });
  showInfo("Please sign the transaction in your wallet…");
  const signed = await signTransaction(address, tx);
  showInfo("Waiting for the chain to record it…");
  return api("POST", "/tx", { json: { action: body.action, signed_tx: signed } });
}
