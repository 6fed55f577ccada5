import { runtimeInfo } from "./runtime-env";

// Rendered per request: the values come from the runtime's environment.
export const dynamic = "force-dynamic";

export default function Home() {
  const info = runtimeInfo();
  return (
    <main style={{ fontFamily: "system-ui, sans-serif", padding: "2rem" }}>
      <h1>Second</h1>
      <p>
        Version <code>{info.version}</code>, listening on port <code>{info.port ?? "?"}</code>.
      </p>
      <ul>
        <li>Auth mode: {info.authMode ?? "default"}</li>
        <li>Worker: {info.workerUrl ?? "not configured"}</li>
        <li>MongoDB: {info.mongoConfigured ? "configured" : "not configured"}</li>
        <li>Redis: {info.redisConfigured ? "configured" : "not configured"}</li>
      </ul>
    </main>
  );
}
