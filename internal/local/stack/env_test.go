package stack

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestChildEnvironmentsFollowContract(t *testing.T) {
	in := EnvInput{
		Home: "/h", WebPort: 3030, WorkerPort: 3001, MongoPort: 27018, RedisPort: 6380,
		MongoPassword: "mpw_-1", RedisPassword: "rpw-_2",
		InternalAPIToken: "tok", SessionSecret: "sess", ServerActionsKey: "sak", ControlURL: "http://127.0.0.1:4000", ControlToken: "ctl",
		ReleaseVersion: "1.2.3", PackageName: "@second-inc/cli-local-linux-x64", WorkspacesDir: "/h/data/workspaces",
		Environ: []string{"PATH=/usr/bin", "HOME=/root", "SECRET_STUFF=x", "NEXT_PUBLIC_FOO=leak",
			"SECOND_POSTHOG_KEY=phk", "SECOND_SENTRY_DSN=sd", "NEXT_PUBLIC_SENTRY_DSN=nsd", "NODE_OPTIONS=--inspect"},
	}
	mongo := "mongodb://second:mpw_-1@127.0.0.1:27018/second?authSource=admin&directConnection=true&replicaSet=rs0"
	wantWeb := map[string]string{
		"NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1", "HOSTNAME": "127.0.0.1", "PORT": "3030",
		"SECOND_AUTH_MODE": "none", "SECOND_NO_AUTH_SESSION_SECRET": "sess", "INTERNAL_API_TOKEN": "tok",
		"NEXT_SERVER_ACTIONS_ENCRYPTION_KEY": "sak",
		"MONGODB_URI":                        mongo, "REDIS_URL": "redis://:rpw-_2@127.0.0.1:6380",
		"SECOND_PUBLIC_URL": "http://localhost:3030", "WEB_URL": "http://127.0.0.1:3030",
		"WORKER_URL": "http://127.0.0.1:3001", "TOOL_EXECUTE_URL": "http://127.0.0.1:3030/api/internal/tool-execute",
		"SECOND_LOCAL_INSTALL": "1", "SECOND_RELEASE_RUNTIME": "native", "SECOND_RELEASE_VERSION": "1.2.3",
		"SECOND_RELEASE_PACKAGE": "@second-inc/cli-local-linux-x64",
		"SECOND_LOCAL_CLI_URL":   "http://127.0.0.1:4000", "SECOND_LOCAL_CLI_TOKEN": "ctl",
		"SECOND_POSTHOG_KEY": "phk", "SECOND_SENTRY_DSN": "sd", "NEXT_PUBLIC_SENTRY_DSN": "nsd",
		"PATH": "/usr/bin", "HOME": "/root",
	}
	wantWorker := map[string]string{
		"PORT": "3001", "HOST": "127.0.0.1", "HOSTNAME": "127.0.0.1", "INTERNAL_API_TOKEN": "tok", "WEB_URL": "http://127.0.0.1:3030",
		"TOOL_EXECUTE_URL": "http://127.0.0.1:3030/api/internal/tool-execute", "WORKSPACES_DIR": "/h/data/workspaces",
		"MONGODB_URI": mongo, "REDIS_URL": "redis://:rpw-_2@127.0.0.1:6380",
		"SECOND_POSTHOG_KEY": "phk", "SECOND_SENTRY_DSN": "sd", "NEXT_PUBLIC_SENTRY_DSN": "nsd",
		"PATH": "/usr/bin", "HOME": "/root",
	}
	withTelemetryOff := func(m map[string]string) map[string]string {
		m = maps.Clone(m)
		m["SECOND_POSTHOG_DISABLED"], m["SECOND_TELEMETRY_DISABLED"] = "1", "1"
		return m
	}
	off := in
	off.DisableTelemetry = true
	tests := []struct {
		name string
		got  []string
		want map[string]string
	}{
		{"web", WebEnv(in), wantWeb},
		{"worker", WorkerEnv(in), wantWorker},
		{"web telemetry off", WebEnv(off), withTelemetryOff(wantWeb)},
		{"worker telemetry off", WorkerEnv(off), withTelemetryOff(wantWorker)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := envMap(tt.got)
			if !maps.Equal(got, tt.want) {
				for _, k := range slices.Sorted(maps.Keys(got)) {
					if tt.want[k] != got[k] {
						t.Errorf("%s = %q, want %q", k, got[k], tt.want[k])
					}
				}
				for k := range tt.want {
					if _, ok := got[k]; !ok {
						t.Errorf("%s missing", k)
					}
				}
			}
			for k := range got {
				if strings.HasPrefix(k, "NEXT_PUBLIC_") && k != "NEXT_PUBLIC_SENTRY_DSN" {
					t.Errorf("%s must never reach a child", k)
				}
			}
			if !slices.IsSorted(tt.got) {
				t.Error("environment is not sorted")
			}
		})
	}
}

func TestTelemetryDisabledFromUserEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"DO_NOT_TRACK": "1"}, true},
		{map[string]string{"SECOND_TELEMETRY_DISABLED": "true"}, true},
		{map[string]string{"SECOND_TELEMETRY_DISABLED": "0"}, false},
	}
	for _, tt := range tests {
		if got := TelemetryDisabled(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("%v: got %v, want %v", tt.env, got, tt.want)
		}
	}
}
