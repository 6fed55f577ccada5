// Test fixture standing in for the bundled worker: answers /health and
// echoes its environment.
import http from "node:http";

const port = Number(process.env.PORT);
http
  .createServer((req, res) => {
    const body =
      req.url === "/health" ? { ok: true } : req.url === "/env" ? process.env : req.url === "/pid" ? { pid: process.pid } : null;
    res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: "not found" }));
  })
  .listen(port, "127.0.0.1", () => console.log(`fixture worker listening on 127.0.0.1:${port} pid ${process.pid}`));
process.on("SIGTERM", () => {
  console.log("fixture worker: SIGTERM, exiting");
  process.exit(0);
});
