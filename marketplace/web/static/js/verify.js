// Check a download against the product certificate on chain, not the marketplace's word:
// ProductRegistry.certificate(id) read through the wallet's own node (eth_call), compared with
// the SHA-256 of the bytes computed here (crypto.subtle).
import { api, getConfig } from "./api.js";
import { ethCall } from "./wallet.js";

const CERTIFICATE = "0x16115cf8"; // certificate(uint256) -> (publisher, productId, previous, version, kind, status, sha256)
const DELIVERABLE = [2n, 3n]; // on shelf, off shelf

const toHex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

// {sha256, source} certified for `certificateId` of product `productId`; throws if the chain disagrees
async function certified(certificateId, productId) {
  const { contracts } = await getConfig();
  try {
    const word = (await ethCall(contracts.ProductRegistry,
      CERTIFICATE + BigInt(certificateId).toString(16).padStart(64, "0"))).slice(2);
    const field = (i) => word.slice(64 * i, 64 * (i + 1));
    if (BigInt("0x" + field(1)) !== BigInt(productId) || !DELIVERABLE.includes(BigInt("0x" + field(5)))) {
      throw new Error(`certificate ${certificateId} on chain is not an approved version of product ${productId}`);
    }
    return { sha256: field(6), source: `certificate ${certificateId} read from the chain by your wallet` };
  } catch (err) {
    if (!err.unsupported) throw err;
  }
  // the wallet cannot read the chain: the auditor endpoint, which reads the chain (not the database)
  const report = await api("GET", `/audit/product/${certificateId}`);
  const version = report.facts.versions.find((v) => v.certificate === Number(certificateId));
  return { sha256: version.sha256, source: `certificate ${certificateId} per the marketplace's auditor endpoint ` +
    "(your wallet cannot read the chain)" };
}

// The delivered bytes as a Blob, once their SHA-256 matches the certificate; throws otherwise
export async function verifiedDownload(delivery, productId) {
  const expected = await certified(delivery.certificate_id, productId);
  const response = await fetch(delivery.url);
  if (!response.ok) throw new Error(`the download failed (HTTP ${response.status})`);
  let bytes;
  try {
    bytes = await response.arrayBuffer();
  } catch {
    throw new Error("the download was cut short: the marketplace could not deliver bytes matching the certificate");
  }
  const actual = toHex(await crypto.subtle.digest("SHA-256", bytes));
  if (actual !== expected.sha256) {
    throw new Error(`the downloaded bytes hash to ${actual}, ${expected.source} says ${expected.sha256}: not saved`);
  }
  return { blob: new Blob([bytes]), sha256: actual, source: expected.source };
}
