// Release builds must be reproducible: `release build` passes the commit as
// SECOND_BUILD_ID so the build id is not random, and the build runs in one
// process: with parallel build workers, Next.js 15 has been seen to emit
// server chunks whose contents depend on which worker finished first.
//
// `second dev` serves the dev server behind http://<dev-id>.second.localhost
// and passes that host (and the developer's extra ones) in
// SECOND_DEV_ALLOWED_ORIGINS: Next.js dev only serves HMR and chunks to
// origins it allows.
const allowedDevOrigins = (process.env.SECOND_DEV_ALLOWED_ORIGINS || "")
  .split(/[\s,]+/)
  .filter(Boolean);

/** @type {import('next').NextConfig} */
const nextConfig = {
  output: "standalone",
  allowedDevOrigins,
  poweredByHeader: false,
  generateBuildId: async () => process.env.SECOND_BUILD_ID || null,
  experimental: {
    webpackBuildWorker: false,
    parallelServerCompiles: false,
    parallelServerBuildTraces: false,
    cpus: 1,
  },
};

export default nextConfig;
