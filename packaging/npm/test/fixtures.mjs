// Helpers for the launcher tests: a launcher package copied into a temp dir
// with chosen payload digests, fake payload packages whose bin/second is a
// small shell script, and a runner for real node processes.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const launcherSource = path.join(here, '..', 'bin', 'second.js');
export const hostId = `${process.platform}-${process.arch}`;
export const VERSION = '1.2.3';
export const PAYLOAD = `@second-inc/cli-local-${hostId}`;

export function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'second-launcher-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// The fake runtime: reports its args and env, then exits, traps a signal,
// or kills itself, as told by its first argument.
const SCRIPT = `#!/bin/sh
echo "args:$*"
echo "env:$SECOND_CLI_RELEASE_PACKAGE|$SECOND_CLI_RELEASE_VERSION|$SECOND_NODE|$SECOND_LAUNCHED_BY_CLI"
case "$1" in
  exit) exit "$2" ;;
  trap)
    # wait (unlike a foreground sleep) returns as soon as a trapped signal arrives.
    trap 'kill $pid 2>/dev/null; echo got-$2; exit 42' "$2"
    echo ready
    while :; do sleep 1 & pid=$!; wait $pid; done ;;
  die) echo ready; kill -"$2" $$; sleep 5 ;;
esac
`;

// makePayload writes a payload package dir and returns its manifest digest.
export function makePayload(dir, { name = PAYLOAD, version = VERSION, salt = '' } = {}) {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version, bin: { 'second-local': 'bin/second' } }, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'bin', 'second'), SCRIPT, { mode: 0o755 });
  const manifest = JSON.stringify({ name, version, platform: hostId, salt }, null, 2) + '\n';
  fs.writeFileSync(path.join(dir, 'manifest.json'), manifest);
  return createHash('sha256').update(manifest).digest('hex');
}

// makeLauncher copies bin/second.js into a package recording payloads.
export function makeLauncher(dir, payloads) {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.copyFileSync(launcherSource, path.join(dir, 'bin', 'second.js'));
  const pkg = { name: '@second-inc/cli', version: VERSION, bin: { second: 'bin/second.js' }, secondPayloads: payloads };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  return path.join(dir, 'bin', 'second.js');
}

export function hostPayloads(digest) {
  return { [hostId]: { name: PAYLOAD, manifestSha256: digest } };
}

// packPayload makes an npm tarball of a payload dir with npm itself
// (these fakes have no node_modules, so npm pack is faithful here).
export function packPayload(dir, dest) {
  fs.mkdirSync(dest, { recursive: true });
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest, dir], { env: npmEnv(dest), encoding: 'utf8' });
  return path.join(dest, JSON.parse(out)[0].filename);
}

// npmEnv isolates npm from this machine's config and network.
export function npmEnv(root) {
  return {
    ...process.env,
    npm_config_cache: path.join(root, '.npm-cache'),
    npm_config_userconfig: path.join(root, '.npmrc-none'),
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
  };
}

// fakeNpmPath puts an `npm` first on PATH that records being called and fails.
export function fakeNpmPath(dir) {
  const bin = path.join(dir, 'fake-npm-bin');
  fs.mkdirSync(bin, { recursive: true });
  const marker = path.join(dir, 'npm-was-called');
  fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\necho "$@" > '${marker}'\nexit 1\n`, { mode: 0o755 });
  return { PATH: `${bin}${path.delimiter}${process.env.PATH}`, marker };
}

// runLauncher runs the launcher in a real node process. onStdout may act
// on the child (for signal tests).
export function runLauncher(bin, args, env, { onStdout, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      // An orphaned payload may still hold the pipes open: stop reading.
      child.stdout.destroy();
      child.stderr.destroy();
      reject(new Error(`launcher timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (onStdout) onStdout(stdout, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export function baseEnv(root, extra = {}) {
  const env = { ...npmEnv(root), HOME: path.join(root, 'home'), ...extra };
  for (const k of ['SECOND_HOME', 'SECOND_CLI_PAYLOAD_DIR', 'SECOND_CLI_PAYLOAD_PACKAGE']) if (!(k in extra)) delete env[k];
  return env;
}
