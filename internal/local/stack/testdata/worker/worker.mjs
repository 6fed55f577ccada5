// Test fixture standing in for the bundled worker: answers /health and
// echoes its environment. It listens on $HOST, or on every interface (::)
// when a "listen-all" marker file sits beside it, like a worker that
// ignores HOST.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const host = fs.existsSync(path.join(here, "listen-all")) ? "::" : process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT);
http
  .createServer((req, res) => {
    const body =
      req.url === "/health" ? { ok: true } : req.url === "/env" ? process.env : req.url === "/pid" ? { pid: process.pid } : null;
    res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: "not found" }));
  })
  .listen(port, host, () => console.log(`fixture worker listening on ${host}:${port} pid ${process.pid}`));
process.on("SIGTERM", () => {
  console.log("fixture worker: SIGTERM, exiting");
  process.exit(0);
});
