// A member's own transaction: the marketplace prepares it, the wallet signs it, the marketplace relays it.
// A wallet that only signs to send (MetaMask) sends it itself; the marketplace then checks it by hash.
import { api } from "./api.js";
import { showInfo } from "./ui.js";
import { WalletError, sendFromWallet, signTransaction } from "./wallet.js";

export async function sendTransaction(address, body) {
  const tx = await api("POST", "/tx/prepare", { json: body });
  showInfo("Please sign the transaction in your wallet…");
  let submitted;
  try {
    submitted = { signed_tx: await signTransaction(address, tx) };
  } catch (err) {
    if (!(err instanceof WalletError && err.unsupported)) throw err;
    showInfo("Please confirm the transaction in your wallet: it sends it itself…");
    submitted = { tx_hash: await sendFromWallet(address, tx) };
  }
  showInfo("Waiting for the chain to record it…");
  return api("POST", "/tx", { json: { action: body.action, ...submitted } });
}
