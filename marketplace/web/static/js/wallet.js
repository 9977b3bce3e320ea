// The member's wallet through the standard EIP-1193 provider (window.ethereum).

export class WalletError extends Error {
  constructor(message, unsupported = false) {
    super(message);
    this.unsupported = unsupported; // the wallet does not offer the method at all
  }
}

function provider() {
  if (!window.ethereum) {
    throw new WalletError("no wallet found: install a browser wallet such as MetaMask, then reload this page");
  }
  return window.ethereum;
}

function explain(err, method) {
  if (err instanceof WalletError) return err;
  if (err && err.code === 4001) return new WalletError("you rejected the request in your wallet: nothing was signed");
  if (err && (err.code === 4200 || err.code === -32601)) {
    return new WalletError(`your wallet does not support ${method}, which the marketplace needs`, true);
  }
  return new WalletError(`the wallet refused: ${err && err.message ? err.message : err}`);
}

async function call(method, params) {
  try {
    return await provider().request({ method, params });
  } catch (err) {
    throw explain(err, method);
  }
}

export async function connect() {
  const [address] = await call("eth_requestAccounts");
  if (!address) throw new WalletError("the wallet shared no account");
  return address;
}

function utf8Hex(text) {
  return "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function personalSign(address, message) {
  return call("personal_sign", [utf8Hex(message), address]);
}

export function signTypedData(address, document) {
  return call("eth_signTypedData_v4", [address, JSON.stringify(document)]);
}

const hex = (n) => "0x" + BigInt(n).toString(16);

// A transaction prepared by the marketplace (POST /tx/prepare), as JSON-RPC quantities.
function rpcTransaction(address, tx) {
  return {
    from: address, to: tx.to, data: tx.data, value: hex(tx.value), gas: hex(tx.gas), nonce: hex(tx.nonce),
    maxFeePerGas: hex(tx.maxFeePerGas), maxPriorityFeePerGas: hex(tx.maxPriorityFeePerGas),
    chainId: hex(tx.chainId), type: hex(tx.type),
  };
}

// Signed, for the marketplace to relay.
export function signTransaction(address, tx) {
  return call("eth_signTransaction", [rpcTransaction(address, tx)]);
}

// Signed and sent by the wallet itself (MetaMask offers only this); returns the hash.
export function sendFromWallet(address, tx) {
  return call("eth_sendTransaction", [rpcTransaction(address, tx)]);
}

// bytes32 of a short text, right-padded with zeros (the Redeem voucher's purpose)
export function bytes32(text) {
  const h = utf8Hex(text).slice(2);
  if (h.length > 64) throw new WalletError("the purpose must fit in 32 bytes");
  return "0x" + h.padEnd(64, "0");
}

// A read-only contract call on the wallet's own node (the page does not take the marketplace's word)
export function ethCall(to, data) {
  return call("eth_call", [{ to, data }, "latest"]);
}

// EIP-3085: offer the marketplace's chain to the wallet (it asks the user to approve).
export async function addChain(chainId, rpcUrl) {
  await call("wallet_addEthereumChain", [{
    chainId: `0x${chainId.toString(16)}`, chainName: `GridMart devnet (${chainId})`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: [rpcUrl],
  }]);
}
