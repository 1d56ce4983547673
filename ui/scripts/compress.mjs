// Writes a .gz next to every built asset: the server sends it to clients that accept
// gzip, so the bundle crosses the wire compressed without compressing per request.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const dir = new URL("../../src/loopline/server/static/assets/", import.meta.url).pathname;
let raw = 0;
let packed = 0;
for (const name of readdirSync(dir)) {
  if (!/\.(js|css|svg|json)$/.test(name)) continue;
  const data = readFileSync(join(dir, name));
  const gz = gzipSync(data, { level: 9 });
  writeFileSync(join(dir, `${name}.gz`), gz);
  raw += data.length;
  packed += gz.length;
}
console.log(`assets: ${(raw / 1024).toFixed(1)} KiB, ${(packed / 1024).toFixed(1)} KiB gzipped`);
