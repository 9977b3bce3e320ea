// One product: description, certificate, version history, price plans, buying and (for its publisher) pricing.
import { api, notOffered, session } from "../api.js";
import { busy, bytes, el, header, member, param, showError, showInfo, signInLink, table, when } from "../ui.js";
import { sendTransaction } from "../transaction.js";

header();
const root = document.getElementById("product");
const id = Number(param("id"));

function dl(pairs) {
  return el("dl", {}, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function certificate(c) {
  return el("section", { "aria-labelledby": "cert-h" },
    el("h2", { id: "cert-h" }, `Certificate ${c.id} (version ${c.version})`),
    dl([["Status", c.status], ["Content id (CID)", el("code", { class: "cid" }, c.cid)],
      ["SHA-256 of the artifact", el("code", { class: "sha" }, c.sha256)],
      ["Publisher", el("span", {}, c.publisher_name ? `${c.publisher_name} ` : "",
        el("code", { class: "wrap" }, c.publisher))], ["Block time", when(c.block_time)],
      ["Block", String(c.block_number)], ["Transaction", el("code", {}, c.tx_hash)],
      ["Publisher's EIP-712 signature", el("code", { class: "wrap" }, c.signature)]]),
    verifyBox(c));
}

// the same checks as `gridmart audit product`, from the chain alone (GET /audit/product/{certificate})
function verifyBox(c) {
  const out = el("div", { id: "audit", "aria-live": "polite" });
  const button = el("button", { type: "button" }, "Verify on chain");
  button.addEventListener("click", () => busy(button, async () => {
    out.replaceChildren();
    const report = await api("GET", `/audit/product/${c.id}`).catch((err) => {
      throw notOffered(err)
        ? new Error("this marketplace does not offer the audit service: use `gridmart audit product`") : err;
    });
    out.replaceChildren(
      el("p", { class: report.passed ? "passed" : "failed" }, report.passed
        ? `Verified: all ${report.checks.length} checks passed.`
        : `Not verified: ${report.checks.filter((k) => !k.passed).length} check(s) failed.`),
      el("ul", {}, report.checks.map((k) => el("li", {}, `${k.passed ? "✔" : "✘"} ${k.name}`,
        k.detail ? el("span", { class: "meta" }, ` — ${k.detail}`) : null))),
      el("p", {}, el("a", { href: `/audit/product/${c.id}?fmt=html` }, "The full audit report")));
  }));
  return el("div", {}, button, out);
}

function versions(list) {
  return el("section", { "aria-labelledby": "versions-h" }, el("h2", { id: "versions-h" }, "Version history"),
    table("Every certified version of this product", ["Version", "Certificate", "Status", "CID", "Block time"],
      list.map((c) => [String(c.version), String(c.id), c.status, c.cid ? el("code", { title: c.cid }, `${c.cid.slice(0, 12)}…`) : "—", when(c.block_time)])));
}

function plans(p) {
  return el("section", { "aria-labelledby": "plans-h" }, el("h2", { id: "plans-h" }, "Price plans"),
    p.plans.length ? table("Plans offered by the publisher", ["Plan", "Price (points)", "Uses"],
      p.plans.map((pl) => [pl.kind, String(pl.price), pl.kind === "per-use" ? String(pl.uses) : "unlimited"]))
      : el("p", {}, "The publisher has not set a price plan yet."));
}

// what the data are: their columns and the sample rows the publisher chose to show (both certified)
function dataSection(p) {
  if (!p.schema && !p.sample_rows) return null;
  const columns = p.schema ? p.schema.columns : [];
  const parts = [el("h2", { id: "schema-h" }, "The data")];
  if (columns.length) {
    parts.push(el("p", { id: "schema" }, `${columns.length} column${columns.length === 1 ? "" : "s"}` +
      ` (${p.schema.format || "csv"}): `, columns.flatMap((c, i) => [i ? ", " : "", el("code", {}, c)])));
  }
  if (p.sample_rows && p.sample_rows.length) {
    const width = Math.max(columns.length, ...p.sample_rows.map((r) => r.length));
    const head = Array.from({ length: width }, (_, i) => columns[i] || `column ${i + 1}`);
    parts.push(el("div", { class: "scroll" }, el("table", { id: "sample" },
      el("caption", {}, `Sample rows given by the publisher (${p.sample_rows.length})`),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, p.sample_rows.map((r) => el("tr", {}, head.map((_, i) =>
        el("td", {}, r[i] === null || r[i] === undefined ? "" : String(r[i])))))))));
  }
  return el("section", { "aria-labelledby": "schema-h" }, ...parts);
}

// a tool's model card: the held-out metrics its publisher certified with the listing
function metricsSection(p) {
  const entries = Object.entries(p.metrics || {});
  if (!entries.length) return null;
  const show = (v) => (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v));
  return el("section", { "aria-labelledby": "metrics-h" }, el("h2", { id: "metrics-h" }, "Model card"),
    table("Held-out metrics given by the publisher", ["Metric", "Value"], entries.map(([k, v]) => [k, show(v)])));
}

async function buyBox(p, s) {
  const { balance } = await api("GET", "/points");
  const choices = p.plans.map((pl, i) => el("label", {},
    el("input", { type: "radio", name: "plan", value: pl.kind, checked: i === 0 }),
    ` ${pl.kind}: ${pl.price} points${pl.kind === "per-use" ? ` for ${pl.uses} uses` : ""}`));
  const after = el("p", { id: "balance-after" });
  const button = el("button", { type: "submit" }, "Buy with points");
  const form = el("form", { id: "buy" }, el("fieldset", {}, el("legend", {}, "Choose a plan"), choices),
    el("p", {}, "Your balance before: ", el("strong", { id: "balance-before" }, `${balance} points`)), button, after);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(button, async () => {
      const plan = new FormData(form).get("plan");
      const out = await sendTransaction(s.address, { action: "purchase", product_id: p.id, plan });
      after.replaceChildren("Your balance after: ", el("strong", {}, `${out.balance} points`),
        ` (paid ${out.price}, of which ${out.fee} to the operator). Licence `, el("code", {}, out.licence_id), " — ",
        el("a", { href: "/web/licences.html" }, "redeem it in My licences"), ".");
      showInfo("Bought.");
    });
  });
  return el("section", { "aria-labelledby": "buy-h" }, el("h2", { id: "buy-h" }, "Buy"), form);
}

function pricingBox(p, s) {
  const button = el("button", { type: "submit" }, "Sign and set the plan");
  const form = el("form", { id: "set-plan" },
    el("label", {}, "Plan ", el("select", { name: "plan" },
      ["per-use", "week", "month", "year"].map((k) => el("option", { value: k }, k)))),
    el("label", {}, "Price (points) ", el("input", { name: "price", type: "number", min: "1", required: true })),
    el("label", {}, "Uses (per-use only) ", el("input", { name: "uses", type: "number", min: "0", value: "0" })),
    button);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(button, async () => {
      const f = new FormData(form);
      await sendTransaction(s.address, { action: "set_plan", product_id: p.id, plan: f.get("plan"),
        price: Number(f.get("price")), uses: Number(f.get("uses")) });
      await render();
      showInfo("The plan is set.");
    });
  });
  return el("section", { "aria-labelledby": "pricing-h" }, el("h2", { id: "pricing-h" }, "Set a price plan"), form);
}

async function render() {
  const p = await api("GET", `/products/${id}`);
  const s = session();
  const latest = p.versions.find((c) => c.id === p.latest_certificate) || p.versions[p.versions.length - 1];
  document.title = `${p.title} · GridMart`;
  document.querySelector("h1").textContent = p.title;
  const parts = [
    el("p", {}, p.description),
    dl([["Publisher", member(p.publisher, p.publisher_name)], ["Kind", `${p.kind} product`],
      ["Sharing mode", p.sharing_mode], ["Status", p.status],
      ["Size", el("span", { id: "size" }, p.size === null ? "—" : `${bytes(p.size)}` +
        (p.encrypted ? " (stored encrypted)" : ""))],
      ["Used", el("span", { id: "usage" }, `${p.licences_sold} licence${p.licences_sold === 1 ? "" : "s"} sold, ` +
        `${p.redemptions} redemption${p.redemptions === 1 ? "" : "s"}`)],
      ["Tags", p.tags.length ? el("span", {}, p.tags.map((t) =>
        el("a", { class: "tag-link", href: `/?tag=${encodeURIComponent(t)}` }, t))) : "—"],
      ["Licence terms", p.licence_terms || "—"]]),
    dataSection(p), metricsSection(p), plans(p)].filter(Boolean);
  if (!p.verified) {
    parts.unshift(el("p", { id: "not-verified", class: "failed" }, "Warning: what this page shows does not match " +
      `the certificate on chain (${p.problems.join("; ")}). Do not rely on it; the operator must repair the index.`));
  }
  if (p.status !== "on-shelf") {
    parts.push(el("p", { id: "not-on-sale", class: "note" }, `This product is ${p.status === "pending" ?
      "waiting for the operator's approval" : "off the shelf"}: it cannot be bought now.`));
  } else if (s && p.plans.length && p.verified) parts.push(await buyBox(p, s));
  if (s && s.address.toLowerCase() === p.publisher.toLowerCase()) parts.push(pricingBox(p, s));
  if (!s) parts.push(el("p", {}, el("a", { href: signInLink() }, "Sign in"), " to buy."));
  if (latest) parts.push(certificate(latest));
  parts.push(versions(p.versions));
  root.replaceChildren(...parts);
}

if (!Number.isInteger(id) || id <= 0) showError("this page needs a product number, e.g. product.html?id=1");
else render().catch(showError);
