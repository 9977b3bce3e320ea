// Read a zip archive (stored or deflated entries, no zip64) into {name: Blob}, with the browser's DecompressionStream.

function entries(view) {
  let end = view.byteLength - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end -= 1;
  if (end < 0) throw new Error("the result is not a zip archive");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const list = [];
  for (let i = 0; i < count; i += 1) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error("the zip archive is damaged");
    const nameLength = view.getUint16(at + 28, true);
    list.push({
      method: view.getUint16(at + 10, true), compressed: view.getUint32(at + 20, true),
      local: view.getUint32(at + 42, true),
      name: new TextDecoder().decode(new Uint8Array(view.buffer, view.byteOffset + at + 46, nameLength)),
    });
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return list;
}

export async function unzip(blob) {
  const view = new DataView(await blob.arrayBuffer());
  const files = {};
  for (const e of entries(view)) {
    if (e.name.endsWith("/")) continue;
    const start = e.local + 30 + view.getUint16(e.local + 26, true) + view.getUint16(e.local + 28, true);
    const data = new Blob([new Uint8Array(view.buffer, view.byteOffset + start, e.compressed)]);
    if (e.method === 0) {
      files[e.name] = data;
    } else if (e.method === 8) {
      files[e.name] = await new Response(data.stream().pipeThrough(new DecompressionStream("deflate-raw"))).blob();
    } else {
      throw new Error(`the zip entry ${e.name} uses an unsupported compression`);
    }
  }
  return files;
}
