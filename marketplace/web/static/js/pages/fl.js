// The federated-learning zone: tasks, rounds, partners, contribution shares, the convergence plot (read-only).
import { api, notOffered } from "../api.js";
import { el, header, memberNames, param, short, showError, table, when } from "../ui.js";

header();
const root = document.getElementById("fl");
const pct = (bps) => `${(bps / 100).toFixed(2)} %`;
let names = new Map();
// a partner by member name where it has one (names need not be unique: the short address too)
const nameOf = (a) => (names.get(a.toLowerCase()) ? `${names.get(a.toLowerCase())} (${short(a)})` : short(a));
// a partner's address whole, after its member name (the address on hover too)
const whole = (a) => el("span", { title: a }, names.get(a.toLowerCase()) ? `${names.get(a.toLowerCase())} ` : "",
  el("code", { class: "wrap" }, a));

async function fl(path) {
  return api("GET", `/fl${path}`).catch((err) => {
    throw notOffered(err) ? new Error("the federated-learning zone is not open on this marketplace") : err;
  });
}

async function tasks() {
  const list = await fl("/tasks");
  root.replaceChildren(list.length
    ? table("Federated-learning tasks", ["Task", "Status"], list.map((t) => [
      el("a", { href: `/web/fl.html?task=${encodeURIComponent(t.task_id)}` }, t.name), t.status]))
    : el("p", {}, "No federated-learning task yet."));
}

function round(r) {
  const shares = r.partners.map((a, i) => `${nameOf(a)} ${pct(r.shares_bps[i])} (${r.sample_counts[i]} samples)`);
  const auc = Object.values(r.metrics || {}).map((m) => m.federated && m.federated.auc).filter((v) => v !== undefined);
  return [String(r.round), r.state, shares.join("; ") || "—",
    auc.length ? auc.map((v) => v.toFixed(3)).join(", ") : "—",
    r.aggregate_cid ? el("code", { title: r.aggregate_cid }, short(r.aggregate_cid)) : "—", when(r.closed_at)];
}

// What FederatedRegistry holds about the task (or the coordinator's memory when it runs without a chain).
function ledgerTable(l, t) {
  if (l.ledger !== "chain") return el("p", {}, "This coordinator records contribution shares in memory only (no chain).");
  const cert = l.final_certificate
    ? el("a", { href: `/web/product.html?id=${l.product_id}` }, `certificate ${l.final_certificate} (product ${l.product_id})`)
    : (l.product_id ? `pending: a new version of product ${l.product_id}` : "pending");
  const paid = Object.entries(t.payouts || {}).map(([a, p]) => `${nameOf(a)} ${p}`).join("; ");
  return table("On chain", ["FederatedRegistry task", "Status", "Rounds", "Reward pool (points)", "Final model", "Paid"], [[
    `#${l.chain_task_id}`, l.status, `${l.rounds_recorded} of ${t.rounds_total} rounds recorded`,
    String(l.reward_pool), cert, paid || "—"]]);
}

async function task(id) {
  const t = await fl(`/tasks/${encodeURIComponent(id)}`);
  names = await memberNames();
  const ledger = await fl(`/tasks/${encodeURIComponent(id)}/ledger`);
  document.querySelector("h1").textContent = `Federated learning: ${t.name}`;
  const finals = t.final_shares_bps || {};
  root.replaceChildren(
    el("dl", {}, [["Status", t.status + (t.status_reason ? ` (${t.status_reason})` : "")],
      ["Owner", whole(t.owner)], ["Encryption", t.backend], ["Parameters", String(t.n_params)],
      ["Rounds", `${t.current_round} of ${t.rounds_total}`], ["Initial model", el("code", {}, t.model_cid)],
      ["Task certificate", el("code", {}, t.certificate_cid)]]
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    table("Partners and their contribution shares", ["Partner", "Key received", "Final share"],
      t.partners.map((p) => [whole(p.address), p.has_key ? "yes" : "no",
        finals[p.address] !== undefined ? pct(finals[p.address]) : "—"])),
    table("Rounds", ["Round", "State", "Shares", "Federated AUC", "Aggregate", "Closed"], t.rounds.map(round)),
    ledgerTable(ledger, t),
    el("figure", {}, el("img", { id: "convergence", src: `/fl/tasks/${encodeURIComponent(id)}/plot.png`,
      alt: `Convergence of ${t.name}: AUC per round, federated against each partner's local-only model` }),
    el("figcaption", {}, "Convergence: AUC per round on each partner's held-out data")),
    el("p", {}, el("a", { href: "/web/fl.html" }, "All tasks")));
}

const id = param("task");
(id ? task(id) : tasks()).catch(showError);
