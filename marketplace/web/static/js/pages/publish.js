// Publish: upload (with progress), describe, sign the EIP-712 listing in the wallet, certify it.
import { api, upload } from "../api.js";
import { busy, el, header, requireSignIn, showInfo } from "../ui.js";
import { csvPreview, parseMetrics } from "../csv.js";
import { signTypedData } from "../wallet.js";

header();
const s = requireSignIn();
const form = document.getElementById("publish");
const bar = document.getElementById("progress");
const percent = document.getElementById("percent");
const result = document.getElementById("result");

function progress(loaded, total) {
  const value = Math.round((100 * loaded) / total);
  bar.value = value;
  bar.textContent = percent.textContent = `${value}%`;
}

async function publish() {
  const f = new FormData(form);
  const metadata = {
    title: f.get("title").trim(), description: f.get("description"), kind: f.get("kind"),
    sharing_mode: f.get("sharing_mode"), licence_terms: f.get("licence_terms"),
    tags: f.get("tags").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean),
  };
  const preview = await previewOf(f);
  if (preview && f.get("declare_schema")) metadata.schema = { format: "csv", columns: preview.columns };
  if (preview && preview.rows.length) metadata.sample_rows = preview.rows;
  const metrics = parseMetrics(f.get("metrics") || "");
  if (Object.keys(metrics).length) metadata.metrics = metrics;
  const previous = Number(f.get("previous") || 0);
  progress(0, 1);
  showInfo("Uploading…");
  const up = await upload(f.get("file"), Boolean(f.get("encrypt")), progress);
  const doc = await api("POST", "/listings/prepare", { json: { cid: up.cid, metadata, previous } });
  showInfo("Please sign the listing in your wallet…");
  const signature = await signTypedData(s.address, doc);
  showInfo("Certifying on chain…");
  const out = await api("POST", "/listings", { json: { cid: up.cid, metadata, previous, signature,
    nonce: doc.message.nonce, deadline: doc.message.deadline } });
  result.replaceChildren(el("h2", {}, "Published"),
    el("p", { id: "published" }, `Certificate ${out.certificate_id} of `,
      el("a", { href: `/web/product.html?id=${out.product_id}` }, `product ${out.product_id}`),
      " is recorded on chain and waits for the operator's approval."),
    el("p", {}, "CID ", el("code", {}, up.cid), ", SHA-256 ", el("code", {}, up.sha256),
      up.encrypted ? " (stored encrypted)" : ""));
  showInfo("Published: waiting for approval.");
}

// a data product's CSV header (and the first rows asked for), read from the chosen file; null if it is not one
async function previewOf(f) {
  const file = f.get("file");
  if (f.get("kind") !== "data" || !file || !file.size) return null;
  if (!f.get("declare_schema") && !Number(f.get("sample_rows"))) return null;
  return csvPreview(file, Math.min(10, Math.max(0, Number(f.get("sample_rows")) || 0)));
}

async function showPreview() {
  const out = document.getElementById("schema-preview");
  const preview = await previewOf(new FormData(form)).catch(() => null);
  out.textContent = preview ? `Columns found: ${preview.columns.join(", ")}` +
    (preview.rows.length ? ` — ${preview.rows.length} sample row(s) will be shown.` : ".") : "";
}
for (const name of ["file", "kind", "declare_schema", "sample_rows"]) form.elements[name].addEventListener("change", showPreview);

form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (s) busy(form.querySelector("button[type=submit]"), publish);
});
