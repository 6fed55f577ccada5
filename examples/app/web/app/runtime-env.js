// The non-secret part of the environment the runtime gives the web server
// (version, port, auth mode, URLs). Tokens and secrets are read where used,
// never displayed.
export function runtimeInfo() {
  const env = process.env;
  return {
    version: env.SECOND_RELEASE_VERSION || "dev",
    package: env.SECOND_RELEASE_PACKAGE || null,
    runtime: env.SECOND_RELEASE_RUNTIME || null,
    port: env.PORT ? Number(env.PORT) : null,
    authMode: env.SECOND_AUTH_MODE || null,
    localInstall: env.SECOND_LOCAL_INSTALL === "1",
    publicUrl: env.SECOND_PUBLIC_URL || null,
    workerUrl: env.WORKER_URL || null,
    mongoConfigured: Boolean(env.MONGODB_URI),
    redisConfigured: Boolean(env.REDIS_URL),
    internalTokenConfigured: Boolean(env.INTERNAL_API_TOKEN),
    telemetryDisabled:
      env.SECOND_TELEMETRY_DISABLED === "1" || env.NEXT_TELEMETRY_DISABLED === "1",
  };
}
