// Points: balance and every movement (grants, purchases, sales, fees, FL rewards), in words.
import { api } from "../api.js";
import { el, header, member, requireSignIn, short, showError, table, when } from "../ui.js";

header();
const ZERO = "0x0000000000000000000000000000000000000000";

async function render() {
  const p = await api("GET", "/points");
  // the other side of a movement: a member by name, the marketplace for a grant, a contract otherwise
  const other = (h) => {
    const [address, name] = h.delta > 0 ? [h.from, h.from_name] : [h.to, h.to_name];
    if (address === ZERO) return "the marketplace";
    return el("span", {}, h.delta > 0 ? "from " : "to ", member(address, name));
  };
  const product = (h) => (h.product_id === null || h.product_id === undefined ? "—"
    : el("a", { href: `/web/product.html?id=${h.product_id}` }, h.product_title || `Product ${h.product_id}`));
  document.getElementById("points").replaceChildren(
    el("p", {}, "Balance: ", el("strong", { id: "balance" }, `${p.balance} points`)),
    table("Point movements, oldest first", ["Time", "Kind", "Product", "With", "Change", "Transaction"],
      p.history.map((h) => [el("time", { title: `block ${h.block}` }, when(h.time)), h.kind, product(h), other(h),
        h.delta > 0 ? `+${h.delta}` : String(h.delta), el("code", { title: h.tx_hash }, short(h.tx_hash))])));
}

if (requireSignIn()) render().catch(showError);
