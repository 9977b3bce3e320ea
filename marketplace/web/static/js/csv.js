// The head of a CSV file, read in the browser before upload (and before any encryption):
// its column names and a few first rows, within the bounds the marketplace accepts.
const HEAD_BYTES = 65536;
const MAX_COLUMNS = 200;
const MAX_CELL = 200;
const MAX_SAMPLE_BYTES = 16384;

// RFC 4180 fields of complete lines (a quoted field may hold commas, quotes and line breaks)
function parse(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") { row.push(field); field = ""; } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  return { rows, rest: row.length || field ? [...row, field] : null };
}

const cell = (v) => (v.length > MAX_CELL ? `${v.slice(0, MAX_CELL - 1)}…` : v);

// {columns, rows} of a UTF-8 CSV file, or null when the file does not look like one
export async function csvPreview(file, sampleRows) {
  const isCsv = /\.csv$/i.test(file.name) || file.type === "text/csv";
  if (!isCsv) return null;
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: file.size > HEAD_BYTES });
  } catch {
    return null; // not text
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) return null;
  const { rows, rest } = parse(text);
  if (rest && file.size <= HEAD_BYTES) rows.push(rest); // the last line of a small file has no line break
  const columns = rows.shift();
  if (!columns || !columns.length || columns.length > MAX_COLUMNS || columns.some((c) => !c.trim() || c.length > MAX_CELL)) {
    return null;
  }
  const sample = rows.filter((r) => r.length > 1 || r[0] !== "").slice(0, sampleRows)
    .map((r) => r.slice(0, MAX_COLUMNS).map(cell));
  while (sample.length && JSON.stringify(sample).length > MAX_SAMPLE_BYTES) sample.pop();
  return { columns: columns.map((c) => c.trim()), rows: sample };
}

// "auc = 0.91" lines -> {auc: 0.91}; numbers stay numbers
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = line.match(/^\s*([^=:]{1,100}?)\s*[=:]\s*(.{1,200}?)\s*$/);
    if (!m) continue;
    const n = Number(m[2]);
    out[m[1]] = m[2] !== "" && Number.isFinite(n) ? n : m[2];
  }
  return out;
}
