// The catalogue: search and filters over GET /products.
import { api } from "../api.js";
import { el, header, short, showError, showInfo } from "../ui.js";

header();
const form = document.getElementById("search");
const results = document.getElementById("results");

function card(p) {
  const plans = p.plans.length ? p.plans.map((pl) => `${pl.kind} ${pl.price} pts`).join(" · ") : "no price plan yet";
  return el("li", { class: "card" },
    el("h2", {}, el("a", { href: `/web/product.html?id=${p.id}` }, p.title || `Product ${p.id}`)),
    el("p", {}, p.description),
    el("p", { class: "meta" }, `${p.kind} · ${p.sharing_mode} · ${p.status} · by `,
      el("code", { title: p.publisher }, short(p.publisher))),
    el("p", { class: "meta" }, plans),
    p.tags.length ? el("p", { class: "tags" }, p.tags.map((t) => el("span", { class: "tag" }, t))) : null);
}

async function search() {
  const f = new FormData(form);
  const query = { q: f.get("q"), kind: f.get("kind"), tag: f.get("tag"), publisher: f.get("publisher") };
  if (f.get("all")) query.on_shelf = false;
  try {
    const products = await api("GET", "/products", { query });
    results.replaceChildren(products.length ? el("ul", { class: "cards" }, products.map(card))
                                            : el("p", {}, "No product matches."));
    showInfo(`${products.length} product${products.length === 1 ? "" : "s"} found.`);
  } catch (err) {
    showError(err);
  }
}

form.addEventListener("submit", (e) => { e.preventDefault(); search(); });
search();
