import { timingSafeEqual } from "node:crypto";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

// Constant-time check of `Authorization: Bearer <INTERNAL_API_TOKEN>`; no
// token configured means the route is closed.
function authorized(request) {
  const token = process.env.INTERNAL_API_TOKEN;
  if (!token) return false;
  const got = Buffer.from(request.headers.get("authorization") || "");
  const want = Buffer.from(`Bearer ${token}`);
  return got.length === want.length && timingSafeEqual(got, want);
}

// POST /api/internal/tool-execute (TOOL_EXECUTE_URL): the worker's way to run
// a tool through the web app. The example only echoes the tool name.
export async function POST(request) {
  if (!authorized(request)) {
    return Response.json({ ok: false, error: "unauthorized" }, { status: 401 });
  }
  let body;
  try {
    body = await request.json();
  } catch {
    return Response.json({ ok: false, error: "body must be JSON" }, { status: 400 });
  }
  if (typeof body?.tool !== "string" || body.tool === "") {
    return Response.json({ ok: false, error: "tool must be a non-empty string" }, { status: 400 });
  }
  return Response.json({ ok: true, tool: body.tool, result: null });
}
