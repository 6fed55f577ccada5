// Launcher behaviour with real node processes and fake payloads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  PAYLOAD, VERSION, hostId, tempDir, makePayload, makeLauncher, hostPayloads, runLauncher, baseEnv, fakeNpmPath, launcherSource,
} from './fixtures.mjs';

const launcher = createRequire(import.meta.url)(launcherSource);

test('--help prints usage without installing anything', async (t) => {
  const root = tempDir(t);
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads('0'.repeat(64)));
  const npm = fakeNpmPath(root);
  for (const flag of ['--help', '-h']) {
    const r = await runLauncher(bin, [flag], baseEnv(root, { PATH: npm.PATH }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: npx --yes @second-inc\/cli/);
    assert.match(r.stdout, /doctor/);
  }
  assert.ok(!fs.existsSync(npm.marker), 'npm was called');
  assert.ok(!fs.existsSync(path.join(root, 'home', '.second')), 'home was created');
});

test('unsupported platform: clear message naming the supported ones, exit 1', async (t) => {
  const root = tempDir(t);
  const bin = makeLauncher(path.join(root, 'cli'), {
    'aix-ppc64': { name: '@second-inc/cli-local-aix-ppc64', manifestSha256: 'a'.repeat(64) },
    'sunos-x64': { name: '@second-inc/cli-local-sunos-x64', manifestSha256: 'b'.repeat(64) },
  });
  const r = await runLauncher(bin, ['start'], baseEnv(root));
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`does not support this platform \\(${hostId}\\)`));
  assert.match(r.stderr, /Supported platforms: aix-ppc64, sunos-x64/);
});

test('platform map: known ids resolve, Windows points to WSL2', () => {
  const pkg = { name: '@second-inc/cli', version: VERSION, secondPayloads: {
    'darwin-arm64': { name: '@second-inc/cli-local-darwin-arm64', manifestSha256: 'a'.repeat(64) },
    'linux-x64': { name: '@second-inc/cli-local-linux-x64', manifestSha256: 'b'.repeat(64) },
  } };
  assert.equal(launcher.resolvePayload(pkg, 'linux-x64').name, '@second-inc/cli-local-linux-x64');
  assert.throws(() => launcher.resolvePayload(pkg, 'win32-x64'), (err) =>
    err instanceof launcher.LauncherError && /WSL2/.test(err.message) && /darwin-arm64, linux-x64/.test(err.message));
  assert.throws(() => launcher.resolvePayload(pkg, 'freebsd-x64'), /does not support this platform \(freebsd-x64\)/);
  assert.throws(() => launcher.resolvePayload({ ...pkg, secondPayloads: {} }, 'linux-x64'), /SECOND_CLI_PAYLOAD_DIR/);
  assert.equal(launcher.installRoot('/h', '@s/p', '1.0.0'), path.join('/h', 'cli-payloads', '@s/p@1.0.0'));
  assert.equal(launcher.redact('https://me:s3cret@npm.example.com/p.tgz'), 'https://***@npm.example.com/p.tgz');
  assert.equal(launcher.redact('@second-inc/cli-local-linux-x64@1.2.3'), '@second-inc/cli-local-linux-x64@1.2.3');
});

test('SECOND_CLI_PAYLOAD_DIR: verified payload runs with args, env and exit code', async (t) => {
  const root = tempDir(t);
  const payload = path.join(root, 'payload');
  const digest = makePayload(payload);
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads(digest));
  const r = await runLauncher(bin, ['exit', '7', '--json'], baseEnv(root, { SECOND_CLI_PAYLOAD_DIR: payload }));
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /^args:exit 7 --json$/m);
  assert.match(r.stdout, new RegExp(`^env:@second-inc/cli\\|${VERSION}\\|${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\|1$`, 'm'));
  assert.doesNotMatch(r.stderr, /unverified/);
});

test('SECOND_CLI_PAYLOAD_DIR: a manifest mismatch is refused', async (t) => {
  const root = tempDir(t);
  const payload = path.join(root, 'payload');
  makePayload(payload);
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads('f'.repeat(64)));
  const r = await runLauncher(bin, ['exit', '0'], baseEnv(root, { SECOND_CLI_PAYLOAD_DIR: payload }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to run .*manifest\.json has sha256 [0-9a-f]{64}, but @second-inc\/cli@1\.2\.3 was released with f{64}/);
  assert.doesNotMatch(r.stdout, /args:/, 'payload ran despite the mismatch');
});

test('SECOND_CLI_PAYLOAD_DIR: a launcher without recorded digests runs it unverified, saying so', async (t) => {
  const root = tempDir(t);
  const payload = path.join(root, 'payload');
  makePayload(payload);
  const bin = makeLauncher(path.join(root, 'cli'), {});
  const r = await runLauncher(bin, ['version'], baseEnv(root, { SECOND_CLI_PAYLOAD_DIR: payload }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^args:version$/m);
  assert.match(r.stderr, /runs unverified/);
});

for (const viaSecondHome of [false, true]) {
  test(`installed payload under ${viaSecondHome ? '$SECOND_HOME' : '~/.second'} runs without npm`, async (t) => {
    const root = tempDir(t);
    const home = viaSecondHome ? path.join(root, 'custom-home') : path.join(root, 'home', '.second');
    const dir = path.join(home, 'cli-payloads', `${PAYLOAD}@${VERSION}`, 'node_modules', ...PAYLOAD.split('/'));
    const digest = makePayload(dir);
    const bin = makeLauncher(path.join(root, 'cli'), hostPayloads(digest));
    const npm = fakeNpmPath(root);
    const env = baseEnv(root, viaSecondHome ? { PATH: npm.PATH, SECOND_HOME: home } : { PATH: npm.PATH });
    const r = await runLauncher(bin, ['status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^args:status$/m);
    assert.ok(!fs.existsSync(npm.marker), 'npm was called for an installed payload');
  });
}

test('installed payload with a different manifest is refused with how to fix it', async (t) => {
  const root = tempDir(t);
  const prefix = path.join(root, 'home', '.second', 'cli-payloads', `${PAYLOAD}@${VERSION}`);
  makePayload(path.join(prefix, 'node_modules', ...PAYLOAD.split('/')));
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads('e'.repeat(64)));
  const r = await runLauncher(bin, ['status'], baseEnv(root));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to run/);
  assert.ok(r.stderr.includes(`Remove ${prefix}`), r.stderr);
  assert.doesNotMatch(r.stdout, /args:/);
});

const signals = [
  ['SIGINT', 'INT'],
  ['SIGTERM', 'TERM'],
  ['SIGHUP', 'HUP'],
];
for (const [sig, short] of signals) {
  test(`${sig} is forwarded to the payload and its exit code propagates`, async (t) => {
    const root = tempDir(t);
    const payload = path.join(root, 'payload');
    const bin = makeLauncher(path.join(root, 'cli'), hostPayloads(makePayload(payload)));
    let sent = false;
    const r = await runLauncher(bin, ['trap', short], baseEnv(root, { SECOND_CLI_PAYLOAD_DIR: payload }), {
      onStdout: (out, child) => {
        if (!sent && out.includes('ready')) {
          sent = true;
          child.kill(sig); // only the launcher: it must pass the signal on
        }
      },
      timeoutMs: 15_000,
    });
    assert.match(r.stdout, new RegExp(`^got-${short}$`, 'm'), r.stderr);
    assert.equal(r.code, 42);
  });
}

for (const [sig, short] of [['SIGTERM', 'TERM'], ['SIGINT', 'INT']]) {
  test(`payload killed by ${sig}: the launcher dies by the same signal`, async (t) => {
    const root = tempDir(t);
    const payload = path.join(root, 'payload');
    const bin = makeLauncher(path.join(root, 'cli'), hostPayloads(makePayload(payload)));
    const r = await runLauncher(bin, ['die', short], baseEnv(root, { SECOND_CLI_PAYLOAD_DIR: payload }));
    assert.equal(r.signal, sig, `code ${r.code}, stderr ${r.stderr}`);
  });
}
