// Operator console: admit members, approve or withdraw listings, fee income.
import { api } from "../api.js";
import { busy, el, header, member, requireSignIn, showError, showInfo, table } from "../ui.js";

header();
const s = requireSignIn();
const admitForm = document.getElementById("admit");

function base64(buffer) {
  let binary = "";
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

admitForm.addEventListener("submit", (e) => {
  e.preventDefault();
  busy(admitForm.querySelector("button[type=submit]"), async () => {
    const f = new FormData(admitForm);
    const out = await api("POST", "/members", { json: {
      address: f.get("address").trim(), name: f.get("name").trim(), roles: f.getAll("roles"),
      identity_document_b64: base64(await f.get("document").arrayBuffer()) } });
    admitForm.reset();
    showInfo(`Admitted ${out.address}: ${out.points} points.`);
    await renderMembers();
  });
});

function statusButton(p, approve) {
  const button = el("button", { type: "button", "data-action": approve ? "approve" : "withdraw",
    "data-certificate": p.latest_certificate }, approve ? "Approve (on shelf)" : "Withdraw (off shelf)");
  button.addEventListener("click", () => busy(button, async () => {
    await api("POST", `/certificates/${p.latest_certificate}/${approve ? "approve" : "withdraw"}`);
    showInfo(`Certificate ${p.latest_certificate} is now ${approve ? "on the shelf" : "off the shelf"}.`);
    await Promise.all([renderListings(), renderIncome()]);
  }));
  return button;
}

const pendingFirst = (p) => (p.status === "pending" ? 0 : 1);

async function renderListings() {
  const products = await api("GET", "/products", { query: { on_shelf: false } });
  document.getElementById("listing-table").replaceChildren(products.length
    ? table("All listings, pending ones first to review", ["Product", "Certificate", "Publisher", "Status", "Action"],
      products.sort((a, b) => pendingFirst(a) - pendingFirst(b)).map((p) => [
        el("a", { href: `/web/product.html?id=${p.id}` }, p.title), String(p.latest_certificate),
        member(p.publisher, p.publisher_name), p.status,
        p.status === "on-shelf" ? statusButton(p, false) : statusButton(p, true)]))
    : el("p", {}, "No listing yet."));
}

async function renderIncome() {
  const [i, members] = await Promise.all([api("GET", "/operator/income"), api("GET", "/members")]);
  const feeName = (members.find((m) => m.address === i.fee_account) || {}).name
    || (i.fee_account.toLowerCase() === s.address.toLowerCase() ? "your operator wallet" : null);
  const [min, max] = i.price_bounds;
  document.getElementById("income-body").replaceChildren(el("dl", {},
    el("dt", {}, "Fees earned (6% of each sale)"), el("dd", { id: "fee-income" }, `${i.fee_income} points`),
    el("dt", {}, "Sales"), el("dd", {}, String(i.sales)),
    el("dt", {}, "Fee account"),
    el("dd", {}, feeName ? `${feeName} ` : "", el("code", { class: "wrap" }, i.fee_account),
      ` (balance ${i.fee_account_balance} points)`),
    el("dt", {}, "Allowed prices"), el("dd", {}, `${min}–${max} points`)));
}

async function renderMembers() {
  const members = await api("GET", "/members");
  document.getElementById("member-table").replaceChildren(members.length
    ? table("Admitted member units", ["Name", "Wallet", "Status"],
      members.map((m) => [m.name, el("code", { class: "wrap" }, m.address), m.status]))
    : el("p", {}, "No member yet."));
}

if (s && !s.isOperator) showError("this console is for the marketplace operator: sign in with the operator's wallet");
else if (s) Promise.all([renderListings(), renderIncome(), renderMembers()]).catch(showError);
