// The catalogue: search, sort, facets (kind, tag) with counts, paging, over GET /products.
import { api } from "../api.js";
import { el, header, member, showError } from "../ui.js";

header();
const PER_PAGE = Math.min(100, Math.max(1, Number.parseInt(new URLSearchParams(location.search).get("per_page"), 10) || 12));
const form = document.getElementById("search");
const sort = document.getElementById("sort");
const results = document.getElementById("results");
const facetBox = document.getElementById("facets");
const pager = document.getElementById("pager");
const count = document.getElementById("count");
let page = 1;
let asked = 0; // only the newest search's answer is shown

// the filters live in the address too, so a tag link (/?tag=load) or a reload shows the same page
const FIELDS = ["q", "kind", "tag", "publisher"];
function fromAddress() {
  const u = new URLSearchParams(location.search);
  for (const name of FIELDS) if (u.has(name)) form.elements[name].value = u.get(name);
  if (u.get("sort")) sort.value = u.get("sort");
  form.elements.all.checked = u.get("on_shelf") === "false";
  page = Math.max(1, Number.parseInt(u.get("page") || "1", 10) || 1);
}

function filters() {
  const f = new FormData(form);
  const query = Object.fromEntries(FIELDS.map((n) => [n, (f.get(n) || "").trim()]));
  if (f.get("all")) query.on_shelf = false;
  return query;
}

const tagLink = (t) => el("a", { class: "tag-link", href: `/?tag=${encodeURIComponent(t)}`, "data-tag": t,
  onclick: (e) => { e.preventDefault(); choose("tag", t); } }, t);

function card(p) {
  const plans = p.plans.length ? p.plans.map((pl) => `${pl.kind} ${pl.price} pts`).join(" · ") : "no price plan yet";
  return el("li", { class: "card", "data-product": p.id },
    el("h2", {}, el("a", { href: `/web/product.html?id=${p.id}` }, p.title || `Product ${p.id}`)),
    el("p", {}, p.description),
    el("p", { class: "meta" }, el("span", { class: "kind" }, p.kind), ` · ${p.sharing_mode} · ${p.status} · by `,
      member(p.publisher, p.publisher_name)),
    el("p", { class: "meta" }, plans),
    el("p", { class: "usage" }, `${p.licences_sold} licence${p.licences_sold === 1 ? "" : "s"} sold · ` +
      `${p.redemptions} use${p.redemptions === 1 ? "" : "s"}`),
    p.tags.length ? el("p", { class: "tags" }, p.tags.map(tagLink)) : null);
}

// clicking a facet (or a card's tag) filters by it; clicking the chosen one again clears it
function choose(name, value) {
  const input = form.elements[name];
  input.value = input.value === value ? "" : value;
  page = 1;
  search();
}

function facetList(title, name, counts) {
  const chosen = form.elements[name].value;
  const entries = Object.entries(counts);
  return [el("h2", {}, title), entries.length ? el("ul", { "data-facet": name }, entries.map(([value, n]) =>
    el("li", {}, el("button", { type: "button", "aria-pressed": String(value === chosen), "data-value": value,
      onclick: () => choose(name, value) }, `${value} `, el("span", { class: "count" }, `(${n})`)))))
    : el("p", { class: "meta" }, "none")];
}

function pages(total) {
  const last = Math.max(1, Math.ceil(total / PER_PAGE));
  const go = (n) => () => { page = n; search(); };
  pager.replaceChildren(
    el("button", { type: "button", disabled: page <= 1, onclick: go(page - 1) }, "Previous page"),
    el("span", { id: "page-of" }, `Page ${page} of ${last}`),
    el("button", { type: "button", disabled: page >= last, onclick: go(page + 1) }, "Next page"));
  pager.hidden = last === 1;
}

async function search() {
  const query = filters();
  const address = new URLSearchParams(Object.entries({ ...query, sort: sort.value, page: page > 1 ? page : "",
    per_page: PER_PAGE === 12 ? "" : PER_PAGE })
    .filter(([, v]) => v !== "" && v !== undefined));
  history.replaceState(null, "", address.toString() ? `/?${address}` : "/");
  const mine = ++asked;
  try {
    const [products, facets] = await Promise.all([
      api("GET", "/products", { query: { ...query, sort: sort.value, page, per_page: PER_PAGE } }),
      api("GET", "/products/facets", { query })]);
    if (mine !== asked) return;
    if (!products.length && page > 1 && facets.total) { // the last page emptied (a filter changed): go back
      page = Math.ceil(facets.total / PER_PAGE);
      search();
      return;
    }
    facetBox.replaceChildren(...facetList("Kind", "kind", facets.kind), ...facetList("Tags", "tag", facets.tags));
    results.replaceChildren(products.length ? el("ul", { class: "cards" }, products.map(card))
                                            : el("p", {}, "No product matches."));
    const first = (page - 1) * PER_PAGE + 1;
    count.textContent = facets.total ? `${facets.total} product${facets.total === 1 ? "" : "s"} found` +
      (facets.total > PER_PAGE ? ` — ${first}–${first + products.length - 1} shown.` : ".") : "No product found.";
    pages(facets.total);
  } catch (err) {
    showError(err);
  }
}

form.addEventListener("submit", (e) => { e.preventDefault(); page = 1; search(); });
sort.addEventListener("change", () => { page = 1; search(); });
fromAddress();
search();
