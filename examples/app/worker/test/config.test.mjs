import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.mjs";

test("reads the environment the runtime gives the worker", () => {
  const c = loadConfig({
    PORT: "4100",
    INTERNAL_API_TOKEN: "t",
    WEB_URL: "http://localhost:3000",
    TOOL_EXECUTE_URL: "http://localhost:3000/api/internal/tool-execute",
    WORKSPACES_DIR: "/tmp/ws",
    MONGODB_URI: "mongodb://127.0.0.1:27017/second",
    REDIS_URL: "redis://127.0.0.1:6379",
  });
  assert.equal(c.port, 4100);
  assert.equal(c.host, "127.0.0.1");
  assert.equal(loadConfig({ HOSTNAME: "box", WORKER_HOST: "0.0.0.0" }).host, "0.0.0.0");
  assert.equal(c.workspacesDir, "/tmp/ws");
  assert.equal(c.redisUrl, "redis://127.0.0.1:6379");
});

test("defaults the port and rejects a bad one", () => {
  assert.equal(loadConfig({}).port, 3001);
  assert.throws(() => loadConfig({ PORT: "http" }), /PORT must be a TCP port number/);
});
