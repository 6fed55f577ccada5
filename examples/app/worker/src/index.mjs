// The example worker: an HTTP server with GET /health (the runtime's
// readiness probe) that reports which of its dependencies are configured.
import http from "node:http";
import { timingSafeEqual } from "node:crypto";
// Both CommonJS; debug require()s node builtins (tty, util), which an ESM
// bundle can only do through the createRequire banner.
import createDebug from "debug";
import ms from "ms";
import { loadConfig } from "./config.mjs";

const config = loadConfig();
const startedAt = Date.now();
const debug = createDebug("second:worker");

function sendJSON(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

// Constant-time bearer check for the internal routes.
function authorized(req) {
  if (!config.internalApiToken) return false;
  const got = Buffer.from(req.headers.authorization || "");
  const want = Buffer.from(`Bearer ${config.internalApiToken}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  debug("%s %s", req.method, url.pathname);
  if (req.method === "GET" && url.pathname === "/health") {
    sendJSON(res, 200, {
      ok: true,
      service: "worker",
      uptime: ms(Date.now() - startedAt),
      webConfigured: Boolean(config.webUrl),
      toolExecuteConfigured: Boolean(config.toolExecuteUrl),
      workspacesConfigured: Boolean(config.workspacesDir),
      mongoConfigured: Boolean(config.mongodbUri),
      redisConfigured: Boolean(config.redisUrl),
    });
    return;
  }
  if (req.method === "GET" && url.pathname === "/internal/config") {
    if (!authorized(req)) return sendJSON(res, 401, { ok: false, error: "unauthorized" });
    return sendJSON(res, 200, { webUrl: config.webUrl, toolExecuteUrl: config.toolExecuteUrl, workspacesDir: config.workspacesDir });
  }
  sendJSON(res, 404, { ok: false, error: "not found" });
});

server.listen(config.port, config.host, () => {
  const addr = server.address();
  console.log(`worker listening on http://${config.host}:${addr.port}`);
});

function shutdown(signal) {
  console.log(`worker: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
