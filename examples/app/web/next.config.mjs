// Release builds must be reproducible: `release build` passes the commit as
// SECOND_BUILD_ID so the build id is not random.
/** @type {import('next').NextConfig} */
const nextConfig = {
  output: "standalone",
  poweredByHeader: false,
  generateBuildId: async () => process.env.SECOND_BUILD_ID || null,
};

export default nextConfig;
