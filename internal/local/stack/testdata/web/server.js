// Test fixture standing in for the Next.js standalone server.js: answers
// /api/health, echoes its environment, and misbehaves on request.
// Marker files in its directory (the cwd) select behaviour:
//   crash-on-start   exit 3 at once (crash loop)
//   grandchild       spawn a long-lived `sleep` in the same process group
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");

const here = __dirname;
if (fs.existsSync(path.join(here, "crash-on-start"))) {
  console.error("fixture web: crash-on-start marker present, exiting 3");
  process.exit(3);
}
if (fs.existsSync(path.join(here, "grandchild"))) {
  const c = spawn("sleep", ["3600"], { stdio: "ignore" });
  fs.writeFileSync(path.join(here, "grandchild.pid"), String(c.pid));
}
const port = Number(process.env.PORT);
const host = process.env.HOSTNAME || "127.0.0.1";
const json = (res, code, body) => {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};
http
  .createServer((req, res) => {
    switch (req.url) {
      case "/api/health":
        return json(res, 200, { ok: true });
      case "/env":
        return json(res, 200, process.env);
      case "/pid":
        return json(res, 200, { pid: process.pid, ppid: process.ppid });
      case "/crash":
        json(res, 200, { crashing: true });
        return setTimeout(() => process.exit(1), 20);
      default:
        return json(res, 404, { error: "not found" });
    }
  })
  .listen(port, host, () => console.log(`fixture web listening on ${host}:${port} pid ${process.pid}`));
process.on("SIGTERM", () => {
  console.log("fixture web: SIGTERM, exiting");
  process.exit(0);
});
