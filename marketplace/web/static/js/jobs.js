// My jobs: follow compute jobs (state, progress, live log), cancel one, fetch its result, and, as the
// owner of compute-only data, approve or reject requests to run on it (docs/compute.md).
import { api, ApiError, session, signOut } from "./api.js";
import { busy, clearMessage, el, header, member, memberNames, param, requireSignIn, showError, showInfo } from "./ui.js";

// this page's own look (the site's policy allows no inline style; a constructed sheet is script)
const sheet = new CSSStyleSheet();
sheet.replaceSync(`
.badge { display: inline-block; padding: 0 .55rem; border-radius: 1rem; font-size: .85rem; font-weight: 600;
  color: #fff; background: #5f6b78; white-space: nowrap; }
.badge.done { background: #1e7b34; }
.badge.failed { background: #b3261e; }
.badge.submitting, .badge.queued, .badge.building, .badge.running { background: #0b5cad; }
.badge.awaiting-approval { background: #8a5a00; }
#jobs .card h2, #job h2 { display: flex; flex-wrap: wrap; align-items: center; gap: .3rem .6rem; }
#jobs .card.selected { border-color: #0b5cad; box-shadow: inset 0 0 0 2px #0b5cad; }
.bar { display: flex; align-items: center; gap: .6rem; margin: .3rem 0; }
.bar progress { flex: 1 1 auto; width: auto; min-width: 0; max-width: 20rem; }
.error-text { color: #8a1c12; overflow-wrap: anywhere; white-space: pre-wrap; margin: .3rem 0; }
#job { background: #fff; border: 1px solid #d5dbe2; border-radius: 6px; padding: .8rem 1rem; }
#job dd { min-width: 0; overflow-wrap: anywhere; }
#job .actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .6rem 0; }
button.danger { background: #b3261e; border-color: #b3261e; }
button.secondary { background: #fff; color: #0b5cad; }
#log { background: #10161d; color: #e8edf2; padding: .6rem .8rem; margin: 0; max-height: 22rem; overflow: auto;
  white-space: pre-wrap; overflow-wrap: anywhere; border-radius: 4px; }
#log:empty::before { content: "(nothing logged yet)"; color: #9aa6b2; }
`);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

header();
const s = requireSignIn();
const listBox = document.getElementById("jobs");
const detailBox = document.getElementById("job");

const ACTIVE = ["submitting", "queued", "building", "running"];
const ENDED = ["done", "failed", "cancelled", "rejected"];
const STATE_TEXT = { "awaiting-approval": "awaiting approval" };

let jobs = [];                  // GET /jobs, newest first
const cards = new Map();        // id -> {json, li}
let selected = Number(param("id")) || null;
let current = null;             // the selected job, as GET /jobs/{id} last answered
let shown = null;               // JSON of the details last drawn
let log = null;                 // {id, offset, refused, complete}
let timer = null;               // the next poll
let inFlight = false, rerun = false;
let pollError = null;
const titles = new Map();       // product id -> Promise<title | null>

// ------------------------------------------------------------------ HTTP beyond JSON (logs, result)

function detailOf(status, text) {
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string") return body.detail;
  } catch { /* not JSON */ }
  if (status === 401) return "please sign in with your wallet first";
  return status >= 500 ? `the marketplace had an internal problem (HTTP ${status}); try again later`
    : `the request was refused (HTTP ${status})`;
}

async function raw(path) {
  const current = session();
  let response;
  try {
    response = await fetch(path, { headers: current ? { Authorization: `Bearer ${current.token}` } : {} });
  } catch {
    throw new ApiError(0, "cannot reach the marketplace: check your connection and try again");
  }
  if (!response.ok) {
    if (response.status === 401) signOut();
    throw new ApiError(response.status, detailOf(response.status, await response.text()));
  }
  return response;
}

const toHex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

// the file name of a Content-Disposition header (filename*=UTF-8'' first, then filename="…")
function filenameOf(disposition) {
  if (!disposition) return null;
  const star = /filename\*=(?:UTF-8|utf-8)''([^;]+)/.exec(disposition);
  if (star) {
    try { return decodeURIComponent(star[1].trim()); } catch { /* fall through */ }
  }
  const plain = /filename="?([^";]+)"?/.exec(disposition);
  return plain ? plain[1].trim() : null;
}

// ------------------------------------------------------------------ formatting

function readable(seconds) {
  if (!seconds) return "—";
  const d = new Date(seconds * 1000);
  return el("time", { datetime: d.toISOString(), title: d.toISOString() },
    d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }));
}

const badge = (state) => el("span", { class: `badge ${state}`, "data-state": state }, STATE_TEXT[state] || state);

function bar(job) {
  const value = job.state === "done" ? 1 : Math.max(0, Math.min(1, job.progress || 0));
  return el("div", { class: "bar" },
    el("progress", { max: "1", value: String(value), "aria-label": `progress of job ${job.id}` },
      `${Math.round(value * 100)}%`),
    el("span", {}, `${Math.round(value * 100)}%`));
}

function productName(id) {
  if (!titles.has(id)) {
    titles.set(id, api("GET", `/products/${id}`).then((p) => p.title || null, () => null));
  }
  const name = el("a", { href: `/web/product.html?id=${id}` }, `Product ${id}`);
  titles.get(id).then((title) => { if (title) name.textContent = `${title} (product ${id})`; });
  return name;
}

let names = new Map(); // member names, once GET /members answers
memberNames().then((m) => { names = m; document.querySelectorAll("[data-holder]").forEach((n) => {
  n.replaceWith(holderOf({ holder: n.getAttribute("data-holder") }));
}); });
const holderOf = (job) => {
  const name = names.get(job.holder.toLowerCase());
  const node = member(job.holder, name);
  if (!name) node.setAttribute("data-holder", job.holder); // named when the names arrive
  return node;
};
const mayDecide = (job) => job.state === "awaiting-approval" && s && job.holder.toLowerCase() !== s.address.toLowerCase();
const isHolder = (job) => s && job.holder.toLowerCase() === s.address.toLowerCase();

// ------------------------------------------------------------------ the list

function card(job) {
  const link = el("a", { href: `/web/jobs.html?id=${job.id}`, "data-job": job.id }, `Job ${job.id}`);
  link.addEventListener("click", (e) => {
    e.preventDefault();
    history.pushState(null, "", link.href);
    select(job.id);
  });
  const whose = isHolder(job) ? null
    : el("p", { class: "meta" }, "A request to run on your compute-only data, from ", holderOf(job));
  return el("li", { class: `card${job.id === selected ? " selected" : ""}`, id: `job-${job.id}` },
    el("h2", {}, link, badge(job.state)),
    el("p", { class: "meta" }, productName(job.product_id)),
    whose,
    bar(job),
    el("p", { class: "meta" }, "Created ", readable(job.created_at),
      job.finished_at ? [" · finished ", readable(job.finished_at)] : null),
    job.error ? el("p", { class: "error-text" }, job.error) : null);
}

function drawList() {
  if (!jobs.length) {
    cards.clear();
    listBox.replaceChildren(el("h2", {}, "Your jobs"), el("p", {}, "You have no compute jobs yet: redeem a licence " +
      "of an application in ", el("a", { href: "/web/licences.html" }, "My licences"), " and choose Run…."));
    return;
  }
  let ul = listBox.querySelector("ul.cards");
  if (!ul) {
    ul = el("ul", { class: "cards", "aria-label": "your jobs" });
    listBox.replaceChildren(el("h2", {}, "Your jobs"), ul);
  }
  const keep = new Set(jobs.map((j) => j.id));
  for (const [id, c] of cards) {
    if (!keep.has(id)) { c.li.remove(); cards.delete(id); }
  }
  let before = null;  // keep the API's order (newest first), redrawing only what changed
  for (const job of [...jobs].reverse()) {
    const json = JSON.stringify(job) + (job.id === selected);
    let c = cards.get(job.id);
    if (!c || c.json !== json) {
      const li = card(job);
      if (c) c.li.replaceWith(li);
      c = { json, li };
      cards.set(job.id, c);
    }
    if (before) { if (c.li.nextSibling !== before) ul.insertBefore(c.li, before); }
    else if (ul.lastChild !== c.li) ul.append(c.li);
    before = c.li;
  }
}

async function refreshList() {
  const listed = await api("GET", "/jobs");
  // the selected job was just read through GET /jobs/{id}, which asks its node: the fresher answer
  jobs = listed.map((j) => (current && j.id === current.id ? current : j));
  drawList();
}

// ------------------------------------------------------------------ one job

function facts(job) {
  const out = job.output;
  const rows = [
    ["Progress", bar(job)],
    ["Product", productName(job.product_id)],
    ["Holder", holderOf(job)],
    ["Node", job.node],
    ["Algorithm", job.algorithm ? el("code", { class: "cid" }, job.algorithm) : "—"],
    ["Input", job.input ? el("code", { class: "cid" }, job.input) : "none"],
    ["Environment", job.env_hash ? el("code", { class: "sha" }, job.env_hash) : "—"],
    ["Created", readable(job.created_at)],
    ["Finished", readable(job.finished_at)],
    ["Recorded", job.recorded ? (job.anchored_batch ? `yes, anchored in batch ${job.anchored_batch}`
      : "yes, to be anchored with the next batch") : "not yet (when the job ends)"],
  ];
  if (out) {
    rows.push(["Output CID", el("code", { class: "cid", id: "output-cid" }, out.cid)],
      ["Output SHA-256", el("code", { class: "sha", id: "output-sha256" }, out.sha256)],
      ["Output", `${out.size ?? "?"} bytes${out.media_type ? `, ${out.media_type}` : ""}`]);
  }
  if (job.error) rows.push(["Error", el("span", { class: "error-text", id: "job-error" }, job.error)]);
  return el("dl", {}, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function actions(job) {
  const buttons = [];
  if (!ENDED.includes(job.state) && isHolder(job)) {
    const cancel = el("button", { type: "button", class: "danger" }, "Cancel job");
    cancel.addEventListener("click", () => busy(cancel, async () => {
      const after = await api("POST", `/jobs/${job.id}/cancel`);
      showInfo(after.state === "cancelled" ? `Job ${job.id} is cancelled.` : `Cancelling job ${job.id}…`);
      await update(after);
    }));
    buttons.push(cancel);
  }
  if (mayDecide(job)) {
    for (const [verb, label, cls] of [["approve", "Approve", null], ["reject", "Reject", "danger"]]) {
      const b = el("button", { type: "button", class: cls }, label);
      b.addEventListener("click", () => busy(b, async () => {
        const after = await api("POST", `/jobs/${job.id}/${verb}`);
        showInfo(verb === "approve" ? `Job ${job.id} is approved: it runs on your data now.`
          : `Job ${job.id} is rejected.`);
        await update(after);
      }));
      buttons.push(b);
    }
    const read = el("button", { type: "button", class: "secondary" }, "Download the algorithm");
    read.addEventListener("click", () => busy(read, async () => {
      const r = await raw(`/jobs/${job.id}/algorithm`);
      save(await r.blob(), filenameOf(r.headers.get("Content-Disposition")) || `job-${job.id}-algorithm.tar.gz`);
    }));
    buttons.push(read);
  }
  if (job.state === "done" && isHolder(job)) {
    const get = el("button", { type: "button", id: "download-result" }, "Download result");
    get.addEventListener("click", () => busy(get, () => downloadResult(job)));
    buttons.push(get);
  }
  return buttons.length ? el("div", { class: "actions" }, buttons) : null;
}

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name }, name);
  document.body.append(a);
  a.click();
  a.remove();
  return a.href;
}

async function downloadResult(job) {
  const r = await raw(`/jobs/${job.id}/result`);
  const bytes = await r.arrayBuffer();
  const name = filenameOf(r.headers.get("Content-Disposition")) || `job-${job.id}-result`;
  const cid = r.headers.get("X-GridMart-CID") || (job.output && job.output.cid) || "";
  const expected = (r.headers.get("X-GridMart-SHA256") || (job.output && job.output.sha256) || "").toLowerCase();
  const actual = toHex(await crypto.subtle.digest("SHA-256", bytes));
  if (expected && actual !== expected) {
    throw new Error(`the result's bytes hash to ${actual}, not the ${expected} the job reported: not saved`);
  }
  // saved under the API's name (the command line's too): a typed blob would make the browser add an extension
  const blob = new Blob([bytes], { type: "application/octet-stream" });
  const href = save(blob, name);
  document.getElementById("result").replaceChildren(
    el("p", {}, "Saved ", el("a", { id: "save-result", href, download: name }, name), ` (${bytes.byteLength} bytes).`),
    el("dl", {}, el("dt", {}, "CID"), el("dd", {}, el("code", { class: "cid", id: "result-cid" }, cid)),
      el("dt", {}, "SHA-256"), el("dd", {}, el("code", { class: "sha", id: "result-sha256" }, actual),
        expected ? el("span", { class: "passed" }, " matches the job's record") : null)));
  showInfo(`Job ${job.id}'s result is saved as ${name}.`);
}

function drawDetails(job) {
  const json = JSON.stringify(job);
  if (json === shown && detailBox.querySelector("#log-box")) return;
  shown = json;
  let logBox = detailBox.querySelector("#log-box");
  let result = detailBox.querySelector("#result");
  if (!logBox || detailBox.dataset.job !== String(job.id)) {
    logBox = el("div", { id: "log-box" }, el("pre", { id: "log", role: "log", tabindex: "0", "aria-label": `log of job ${job.id}` }));
    result = el("div", { id: "result", "aria-live": "polite" });
  }
  const focused = detailBox.contains(document.activeElement) && document.activeElement.tagName === "BUTTON"
    ? document.activeElement.textContent : null;
  detailBox.dataset.job = String(job.id);
  detailBox.hidden = false;
  detailBox.replaceChildren(el("h2", {}, `Job ${job.id}`, badge(job.state)), facts(job), actions(job) || "", result,
    el("h3", {}, "Log"), logBox);
  if (focused) {  // a redraw (the job moved on) keeps the keyboard where it was
    const again = [...detailBox.querySelectorAll(".actions button")].find((b) => b.textContent === focused);
    if (again) again.focus();
  }
}

async function pullLog(job) {
  if (!log || log.id !== job.id) log = { id: job.id, offset: 0, refused: null, complete: false };
  const mine = log;  // select() starts a new one: what an older read brings is dropped
  const pre = document.getElementById("log");
  for (let i = 0; i < 50 && !mine.refused && !mine.complete; i++) {
    const ended = ENDED.includes(job.state);
    let text;
    try {
      const r = await raw(`/jobs/${job.id}/logs?offset=${mine.offset}`);
      text = await r.text();
      const next = Number(r.headers.get("X-Next-Offset"));
      if (log !== mine) return;
      mine.offset = Number.isFinite(next) && next >= mine.offset ? next : mine.offset + new Blob([text]).size;
    } catch (err) {
      if (log !== mine) return;
      if (err.status !== 403) throw err;
      mine.refused = err.message;  // e.g. the holder of a job on compute-only data: the API's words instead
      document.getElementById("log-box").replaceChildren(el("p", { class: "note", id: "log-refused" },
        `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}.`));
      return;
    }
    if (text && pre) {
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(text);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    if (!ended) return;              // one piece per tick while it runs
    if (!text) mine.complete = true; // ended: read to the end, then stop
  }
}

async function update(job) {
  if (job.id === selected) {
    current = job;
    drawDetails(job);
  }
  const i = jobs.findIndex((j) => j.id === job.id);
  if (i >= 0) jobs[i] = job;
  drawList();
  kick();
}

async function refreshSelected() {
  if (!selected) return;
  const job = await api("GET", `/jobs/${selected}`);
  if (job.id !== selected) return;
  current = job;
  drawDetails(job);
  await pullLog(job);
}

function select(id) {
  selected = id;
  current = null;
  shown = null;
  log = null;
  detailBox.replaceChildren();
  detailBox.hidden = !id;
  drawList();
  clearMessage();
  kick(true);
  if (id) detailBox.scrollIntoView({ block: "start" });
}

// ------------------------------------------------------------------ polling: every second while a job runs

function delay() {
  const all = current ? [...jobs, current] : jobs;
  if (all.some((j) => ACTIVE.includes(j.state))) return 1000;
  if (all.some((j) => j.state === "awaiting-approval")) return 5000;
  return null;  // nothing can change by itself: stop
}

// one poll at a time: a poll asked for while one is in flight runs right after it
async function poll() {
  timer = null;
  if (inFlight) { rerun = true; return; }
  inFlight = true;
  let next;
  try {
    if (selected) await refreshSelected();
    await refreshList();
    if (pollError) { pollError = null; clearMessage(); }
    next = delay();
  } catch (err) {
    if (err.status === 404 && selected) {
      showError(err);
      selected = null;
      current = null;
      detailBox.hidden = true;
    } else if (err.status !== 401 && pollError !== err.message) {
      pollError = err.message;
      showError(err);
    } else if (err.status === 401) showError(err);
    next = err.status === 401 ? null : 3000;  // signed out: stop; otherwise try again a little later
  } finally {
    inFlight = false;
  }
  if (rerun) { rerun = false; next = 0; }
  if (timer === null && next !== null) timer = setTimeout(poll, next);
}

function kick(now = false) {
  if (timer !== null && !now) return;
  clearTimeout(timer);
  timer = setTimeout(poll, now ? 0 : 1000);
}

window.addEventListener("popstate", () => select(Number(param("id")) || null));

if (s) kick(true);
