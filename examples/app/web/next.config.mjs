// Release builds must be reproducible: `release build` passes the commit as
// SECOND_BUILD_ID so the build id is not random, and the build runs in one
// process: with parallel build workers, Next.js 15 has been seen to emit
// server chunks whose contents depend on which worker finished first.
/** @type {import('next').NextConfig} */
const nextConfig = {
  output: "standalone",
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
