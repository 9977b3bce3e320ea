// Shared page furniture: the header, messages, small DOM helpers and formatters.
import { api, session, signOut } from "./api.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null));
  return node;
}

const LINKS = [["/", "Catalogue"], ["/web/publish.html", "Publish"], ["/web/licences.html", "My licences"], ["/web/jobs.html", "My jobs"],
  ["/web/points.html", "Points"], ["/web/fl.html", "FL zone"]];

export function header() {
  const s = session();
  const links = s && s.isOperator ? [...LINKS, ["/web/operator.html", "Operator"]] : LINKS;
  const here = location.pathname;
  const nav = el("nav", { "aria-label": "main" },
    el("a", { href: "/", class: "brand" }, "GridMart"),
    el("ul", {}, links.map(([href, text]) =>
      el("li", {}, el("a", { href, "aria-current": href === here ? "page" : null }, text)))),
    s ? el("span", { class: "who" }, "Signed in as ", el("code", { title: s.address }, short(s.address)), " ",
          el("button", { type: "button", class: "link", onclick: () => { signOut(); location.reload(); } }, "Sign out"))
      : el("a", { class: "who", href: signInLink() },
          "Sign in with wallet"));
  document.querySelector("header").replaceChildren(nav);
}

// Messages go to the page's single live region: plain words, never a stack trace.
function say(kind, text) {
  const box = document.getElementById("message");
  box.className = kind;
  box.textContent = text;
  if (kind === "error") box.focus();
}

export const showError = (err) => say("error", messageOf(err));
export const showInfo = (text) => say("info", text);
export const clearMessage = () => say("", "");

export function messageOf(err) {
  const text = err && err.message ? err.message : String(err);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Run a button's action with the button disabled and errors shown on the page.
export async function busy(button, action) {
  button.disabled = true;
  try {
    clearMessage();
    return await action();
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function requireSignIn() {
  const s = session();
  if (!s) {
    say("error", "Please sign in with your wallet to use this page.");
    document.getElementById("message").append(" ",
      el("a", { href: signInLink() }, "Sign in"));
  }
  return s;
}

export const signInLink = () => `/web/signin.html?next=${encodeURIComponent(location.pathname + location.search)}`;
// a member: its name from the member index, the address on hover (and the short address when unnamed)
export function member(address, name, { you } = {}) {
  if (!address) return "—";
  const label = you && session() && session().address.toLowerCase() === address.toLowerCase() ? "you" : null;
  return name ? el("span", { class: "member", title: address }, label ? `${name} (you)` : name)
              : el("code", { class: "member", title: address }, label || short(address));
}

// address -> member name, from GET /members, for pages whose API answers carry addresses only
let names;
export function memberNames() {
  names ??= api("GET", "/members")
    .then((list) => new Map(list.map((m) => [m.address.toLowerCase(), m.name])))
    .catch(() => new Map()); // without names the page still works: it shows addresses
  return names;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i += 1; }
  return i ? `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}` : `${n} bytes`;
}

export const short = (address) => (address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "");
export const when = (seconds) =>
  (seconds ? new Date(Math.floor(seconds) * 1000).toISOString().replace(".000Z", "Z") : "—");
export const param = (name) => new URLSearchParams(location.search).get(name);

export function table(caption, columns, rows) {
  return el("table", {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((cell) => el("td", {}, cell))))));
}
