import { api, saveSession } from "../api.js";
import { busy, header, param, showInfo } from "../ui.js";
import { connect, personalSign } from "../wallet.js";

header();
document.getElementById("signin").addEventListener("click", (e) => busy(e.target, async () => {
  const address = await connect();
  const { message } = await api("POST", "/auth/nonce", { json: { address } });
  showInfo("Please sign the sign-in message in your wallet…");
  const signature = await personalSign(address, message);
  saveSession(await api("POST", "/auth/login", { json: { message, signature } }));
  const next = param("next");
  location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
}));
