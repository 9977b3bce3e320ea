// My licences: redeem one with a Redeem voucher signed in the wallet, then download / call / run.
import { api, ApiError, getConfig, runWith } from "../api.js";
import { busy, el, header, member, requireSignIn, showError, showInfo, table, when } from "../ui.js";
import { csvPreview } from "../csv.js";
import { unzip } from "../unzip.js";
import { verifiedDownload } from "../verify.js";
import { bytes32, signTypedData } from "../wallet.js";

header();
const s = requireSignIn();
const list = document.getElementById("licences");
const delivery = document.getElementById("delivery");
let lastNonce = 0;
const purposeSelect = el("select", { id: "purpose", name: "purpose" },
  ["download", "call", "run"].map((p) => el("option", { value: p }, p)));

// the EIP-712 Redeem voucher, as eth_signTypedData_v4 takes it (domain and types come from the API)
async function voucherDocument(licenceId, nonce, deadline, purpose) {
  const cfg = await getConfig();
  return {
    types: {
      EIP712Domain: [{ name: "name", type: "string" }, { name: "version", type: "string" },
        { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" }],
      Redeem: cfg.eip712.types.Redeem,
    },
    primaryType: "Redeem",
    domain: { ...cfg.eip712.domain, chainId: cfg.chain_id, verifyingContract: cfg.contracts.Licensing },
    message: { licenceId: BigInt(licenceId).toString(), nonce, deadline, purpose: bytes32(purpose) },
  };
}

// a heat-map result: one map at a time, chosen by layer and period (manifest.json names
// both), with the weakest-areas table; an archive without a manifest shows every map
async function maps(zip) {
  const files = await unzip(zip);
  const manifestName = Object.keys(files).find((n) => n.split("/").pop() === "manifest.json");
  if (!manifestName) return mapList(files);
  const prefix = manifestName.slice(0, -"manifest.json".length);
  const manifest = JSON.parse(await files[manifestName].text());
  const slug = (label) => label.replaceAll(":", "").replaceAll(" ", "_").toLowerCase();  // analytics.heatmap.png.slug
  const state = { layer: manifest.layers[0], period: 0 };
  const img = el("img", { alt: "" });
  const caption = el("figcaption", {});
  const periodLabel = el("output", { id: "map-period-label" });
  const show = () => {
    const name = `${prefix}png/${state.layer}_${slug(manifest.periods[state.period])}.png`;
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = files[name] ? URL.createObjectURL(files[name]) : "";
    img.alt = `heat map: ${state.layer.replaceAll("_", " ")}, ${manifest.periods[state.period]}`;
    caption.textContent = `${state.layer.replaceAll("_", " ")} · ${manifest.period} ${manifest.periods[state.period]}`
      + (files[name] ? "" : " (not in the result)");
    periodLabel.textContent = manifest.periods[state.period];
    for (const b of layerButtons) b.setAttribute("aria-pressed", String(b.dataset.layer === state.layer));
  };
  const layerButtons = manifest.layers.map((layer) => el("button", {
    type: "button", class: "layer", "data-layer": layer,
    onclick: () => { state.layer = layer; show(); },
  }, layer.replaceAll("_", " ")));
  const slider = el("input", {
    type: "range", id: "map-period", min: 0, max: manifest.periods.length - 1, value: 0, "aria-label": "period",
    oninput: (e) => { state.period = Number(e.target.value); show(); },
  });
  const viewer = el("section", { class: "heatmap-viewer", "aria-label": "heat map" },
    el("div", { class: "layers", role: "group", "aria-label": "layer" }, layerButtons),
    el("label", { class: "period" }, `${manifest.period} `, slider, " ", periodLabel),
    el("figure", {}, img, caption),
    el("p", {}, `${manifest.cells_shown} cells of ${manifest.cell_m} m shown; cells with fewer than `
      + `${manifest.min_count} customers are withheld.`));
  const weakest = manifest.files && manifest.files.weakest && files[prefix + manifest.files.weakest];
  if (weakest) {
    const head = await csvPreview(new File([weakest], "weakest.csv", { type: "text/csv" }), 10);
    if (head) viewer.append(el("div", { class: "scroll" }, table("The weakest areas", head.columns, head.rows)));
  }
  show();
  return viewer;
}

function mapList(files) {
  const pngs = Object.keys(files).filter((n) => n.endsWith(".png")).sort();
  return el("div", { class: "maps" }, pngs.map((name) => el("figure", {},
    el("img", { src: URL.createObjectURL(files[name]), alt: `heat map ${name}` }),
    el("figcaption", {}, name.split("/").pop().replace(/\.png$/, "").replaceAll("_", " ")))));
}

// remote-run: the subscriber's data goes to the product, the result comes back
function runForm(runUrl) {
  const button = el("button", { type: "submit" }, "Run the product on it");
  const output = el("div", { id: "run-result", "aria-live": "polite" });
  const form = el("form", { id: "run" }, el("h3", {}, "Run it on your data"),
    el("label", {}, "Your data file ", el("input", { type: "file", name: "file", required: true })), button, output);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(button, async () => {
      output.replaceChildren();
      const result = await runWith(runUrl, new FormData(form).get("file"));
      const csv = result.type.startsWith("text/csv");
      const name = csv ? "result.csv" : "result.zip";
      output.replaceChildren(el("p", {}, el("a", { href: URL.createObjectURL(result), download: name },
        `Download the result (${name}, ${result.size} bytes)`)));
      if (csv) output.append(el("pre", {}, (await result.text()).split("\n").slice(0, 6).join("\n")));
      else output.append(await maps(result));
      showInfo("The product ran on your data.");
    });
  });
  return form;
}

// POST a job to a delivery's jobs link (the link is the authorization); the job as the API answers it
async function postJob(jobsUrl, body) {
  let response;
  try {
    response = await fetch(jobsUrl, { method: "POST", body });
  } catch {
    throw new ApiError(0, "cannot reach the marketplace: check your connection and try again");
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = `the job was refused (HTTP ${response.status})`;
    try { detail = JSON.parse(text).detail || detail; } catch { /* not JSON */ }
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return JSON.parse(text);
}

// a bundle application (or compute-only data): start a compute job with the delivery's jobs link, follow it on My jobs
function jobForm(d) {
  const dataOnly = d.mode === "compute-only";
  const open = el("button", { type: "button", id: "run-job" }, "Run…");
  const button = el("button", { type: "submit" }, "Start the job");
  const form = el("form", { id: "job-form", hidden: true }, el("h3", {}, "Start a compute job"),
    dataOnly ? el("label", {}, "Your algorithm (a bundle file) ", el("input", { type: "file", name: "algorithm", required: true })) : null,
    el("label", {}, "Input file ", el("input", { type: "file", name: "input" })), button);
  open.addEventListener("click", () => { form.hidden = false; open.hidden = true; form.querySelector("input").focus(); });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(button, async () => {
      const body = new FormData();
      for (const name of ["algorithm", "input"]) {
        const file = new FormData(form).get(name);
        if (file && file.size) body.append(name, file);
      }
      showInfo("Starting the job…");
      const job = await postJob(d.jobs_url, body);
      location.assign(`/web/jobs.html?id=${job.id}`);
    });
  });
  return el("div", {}, el("p", {}, dataOnly ? "This data stays on its owner's compute node: your algorithm runs " +
    "there and only its output comes back." : "This application runs as a compute job on the marketplace's " +
    "compute node; you follow it and fetch its result on ", el("a", { href: "/web/jobs.html" }, "My jobs"),
  `. The link works for ${d.expires_in} s.`), open, form);
}

function showDelivery(lic, d) {
  const parts = [el("h2", {}, `Delivery for licence of product ${lic.product_id}`)];
  if (d.jobs_url) {
    parts.push(jobForm(d));
  } else if (d.run_url) {
    parts.push(el("p", {}, `This application runs at the marketplace: the link works for ${d.expires_in} s.`),
      runForm(d.run_url));
  } else if (d.encrypted) {
    parts.push(el("p", {}, el("a", { id: "download", href: d.url, download: d.cid }, "Download (encrypted)"),
    ` — the link works for ${d.expires_in} s. SHA-256 of the content: `, el("code", {}, d.sha256), "."));
  } else {
    const button = el("button", { id: "verify-download", type: "button" }, "Download and verify");
    const result = el("p", { id: "verify-result" });
    button.addEventListener("click", () => busy(button, async () => {
      const got = await verifiedDownload(d, lic.product_id);
      result.replaceChildren(el("a", { id: "download", href: URL.createObjectURL(got.blob), download: d.cid },
        "Save the verified file"), ` — SHA-256 ${got.sha256} matches ${got.source}.`);
    }));
    parts.push(el("p", {}, button, ` — the link works for ${d.expires_in} s; the bytes are checked against the ` +
      "certificate on chain before you can save them."), result);
  }
  if (d.encrypted && !d.run_url && !d.jobs_url) {
    parts.push(el("p", {}, "This product is encrypted (AES-256-GCM). Its content key, wrapped to your wallet's " +
      "public key, is below: decrypt the download with the GridMart command line and your wallet key."),
    el("details", {}, el("summary", {}, "Wrapped content key"), el("code", { class: "wrap" }, d.wrapped_key)));
  }
  delivery.replaceChildren(...parts);
}

async function redeem(lic, purpose) {
  delivery.replaceChildren();
  const nonce = Math.max(Date.now() * 1000, lastNonce + 1);  // unique per holder
  lastNonce = nonce;
  const deadline = Math.floor(Date.now() / 1000) + 300;
  showInfo("Please sign the redeem voucher in your wallet…");
  const signature = await signTypedData(s.address, await voucherDocument(lic.id, nonce, deadline, purpose));
  showInfo("Redeeming…");
  const d = await api("POST", "/redeem", { json: { licence_id: lic.id, nonce, deadline, purpose, signature } });
  showDelivery(lic, d);
  await render();
  showInfo("Redeemed: your delivery link is ready.");
}

function state(lic) {
  if (lic.revoked) return "revoked";
  return lic.active ? "active" : "used up or expired";
}

async function render() {
  const licences = await api("GET", "/licences");
  if (!licences.length) {
    list.replaceChildren(el("p", {}, "You hold no licence yet: buy one from the ",
      el("a", { href: "/" }, "catalogue"), "."));
    return;
  }
  const rows = licences.map((lic) => {
    const button = el("button", { type: "button", "data-licence": lic.id, disabled: lic.revoked },
      "Sign voucher and redeem");
    button.addEventListener("click", () => busy(button, () => redeem(lic, purposeSelect.value)));
    return [el("span", {}, el("a", { href: `/web/product.html?id=${lic.product_id}` }, lic.product_title || `Product ${lic.product_id}`),
      lic.publisher ? el("span", { class: "meta" }, " by ", member(lic.publisher, lic.publisher_name)) : null),
      el("code", { title: lic.id }, `${lic.id.slice(0, 10)}…`),
      lic.expires_at ? when(lic.expires_at) : "—",
      lic.expires_at && !lic.uses_left ? "—" : String(lic.uses_left), state(lic), button];
  });
  list.replaceChildren(el("label", {}, "Purpose of use ", purposeSelect),
    table("Your licences", ["Product", "Licence", "Expires", "Uses left", "State", ""], rows));
}

if (s) render().catch(showError);
