// Points: balance and every movement (grants, purchases, fees, rewards).
import { api } from "../api.js";
import { el, header, requireSignIn, short, showError, table } from "../ui.js";

header();
const ZERO = "0x0000000000000000000000000000000000000000";

async function render() {
  const p = await api("GET", "/points");
  const who = (a) => (a === ZERO ? "grant" : el("code", { title: a }, a === p.address ? "you" : short(a)));
  document.getElementById("points").replaceChildren(
    el("p", {}, "Balance: ", el("strong", { id: "balance" }, `${p.balance} points`)),
    table("Point movements, oldest first", ["Block", "From", "To", "Change", "Transaction"],
      p.history.map((h) => [String(h.block), who(h.from), who(h.to), h.delta > 0 ? `+${h.delta}` : String(h.delta),
        el("code", { title: h.tx_hash }, short(h.tx_hash))])));
}

if (requireSignIn()) render().catch(showError);
