// Talks to the marketplace API; keeps the session token for this tab.
const KEY = "gridmart.session";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function session() {
  const raw = sessionStorage.getItem(KEY);
  const s = raw ? JSON.parse(raw) : null;
  return s && s.expiresAt > Date.now() ? s : null;
}

export function saveSession(login) {
  sessionStorage.setItem(KEY, JSON.stringify({
    token: login.token, address: login.address, isOperator: login.is_operator,
    expiresAt: Date.now() + login.expires_in * 1000,
  }));
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

function authHeaders() {
  const s = session();
  return s ? { Authorization: `Bearer ${s.token}` } : {};
}

function detailOf(status, text) {
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string") return body.detail;
  } catch { /* not JSON: fall through */ }
  if (status === 401) return "please sign in with your wallet first";
  return status >= 500 ? `the marketplace had an internal problem (HTTP ${status}); try again later`
                       : `the request was refused (HTTP ${status})`;
}

export async function api(method, path, { json, query } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = authHeaders();
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  } catch {
    throw new ApiError(0, "cannot reach the marketplace: check your connection and try again");
  }
  const text = await response.text();
  if (!response.ok) {
    if (response.status === 401) signOut();
    throw new ApiError(response.status, detailOf(response.status, text));
  }
  return text ? JSON.parse(text) : null;
}

// FastAPI's own 404 (no such route, not an answer of ours): a service this marketplace does not include
export const notOffered = (err) => err.status === 404 && err.message === "Not Found";

let config;
export async function getConfig() {
  config ??= await api("GET", "/config");
  return config;
}

// POST a file to a delivery's run link (the link itself is the authorization); the result as a Blob
export async function runWith(runUrl, file) {
  const form = new FormData();
  form.append("file", file);
  let response;
  try {
    response = await fetch(runUrl, { method: "POST", body: form });
  } catch {
    throw new ApiError(0, "cannot reach the marketplace: check your connection and try again");
  }
  if (!response.ok) throw new ApiError(response.status, detailOf(response.status, await response.text()));
  return response.blob();
}

// multipart upload through XMLHttpRequest, for its upload progress events
export function upload(file, encrypt, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/uploads?encrypt=${encrypt}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(new ApiError(xhr.status, detailOf(xhr.status, xhr.responseText)));
    };
    xhr.onerror = () => reject(new ApiError(0, "the upload was interrupted: check your connection and try again"));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}
