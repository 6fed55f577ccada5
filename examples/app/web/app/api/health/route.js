import { runtimeInfo } from "../../runtime-env";

export const dynamic = "force-dynamic";

// GET /api/health: the runtime's readiness probe.
export function GET() {
  const info = runtimeInfo();
  return Response.json({ ok: true, service: "web", version: info.version, port: info.port });
}
