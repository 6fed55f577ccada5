// Reads the environment the runtime gives the worker.
// Missing optional values stay null; a bad PORT is an error, not a guess.
export function loadConfig(env = process.env) {
  const port = env.PORT === undefined || env.PORT === "" ? 3001 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`worker: PORT must be a TCP port number, got ${JSON.stringify(env.PORT)}`);
  }
  return {
    port,
    // Loopback unless told otherwise (containers set WORKER_HOST=0.0.0.0);
    // not HOSTNAME, which container runtimes set to the machine name.
    host: env.WORKER_HOST || "127.0.0.1",
    internalApiToken: env.INTERNAL_API_TOKEN || null,
    webUrl: env.WEB_URL || null,
    toolExecuteUrl: env.TOOL_EXECUTE_URL || null,
    workspacesDir: env.WORKSPACES_DIR || null,
    mongodbUri: env.MONGODB_URI || null,
    redisUrl: env.REDIS_URL || null,
  };
}
