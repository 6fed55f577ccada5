// First-run install through the real npm: a local payload tarball stands in
// for the registry via SECOND_CLI_PAYLOAD_PACKAGE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  PAYLOAD, VERSION, tempDir, makePayload, makeLauncher, hostPayloads, runLauncher, baseEnv, packPayload,
} from './fixtures.mjs';

function leftovers(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.includes('.tmp-'));
}

test('installs the payload with npm, shows progress, renames it into place, then reuses it', async (t) => {
  const root = tempDir(t);
  const digest = makePayload(path.join(root, 'src'));
  const tgz = packPayload(path.join(root, 'src'), path.join(root, 'tarballs'));
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads(digest));
  const env = baseEnv(root, { SECOND_CLI_PAYLOAD_PACKAGE: tgz });

  // A temp dir left by an install killed long ago is cleaned up; a fresh
  // one (maybe a concurrent install) is not touched.
  const scope = path.join(root, 'home', '.second', 'cli-payloads', PAYLOAD.split('/')[0]);
  const base = `${PAYLOAD.split('/')[1]}@${VERSION}`;
  const stale = path.join(scope, `.${base}.tmp-old`);
  const fresh = path.join(scope, `.${base}.tmp-new`);
  fs.mkdirSync(stale, { recursive: true });
  fs.mkdirSync(fresh, { recursive: true });
  const longAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
  fs.utimesSync(stale, longAgo, longAgo);

  const first = await runLauncher(bin, ['version'], env);
  assert.ok(!fs.existsSync(stale), 'stale temp dir kept');
  assert.ok(fs.existsSync(fresh), 'fresh temp dir removed');
  fs.rmSync(fresh, { recursive: true });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /second: installing .*\.tgz for /);
  assert.match(first.stderr, /second: installed .* in [0-9.]+s/);
  assert.match(first.stdout, /^args:version$/m);
  const scopeDir = path.join(root, 'home', '.second', 'cli-payloads', PAYLOAD.split('/')[0]);
  const installed = path.join(scopeDir, `${PAYLOAD.split('/')[1]}@${VERSION}`, 'node_modules', ...PAYLOAD.split('/'));
  assert.ok(fs.existsSync(path.join(installed, 'manifest.json')), `not installed at ${installed}`);
  assert.deepEqual(leftovers(scopeDir), []);

  const second = await runLauncher(bin, ['status'], env);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /installing/);
  assert.match(second.stdout, /^args:status$/m);
});

test('an installed package whose manifest does not match is refused and not kept', async (t) => {
  const root = tempDir(t);
  makePayload(path.join(root, 'src'), { salt: 'tampered' });
  const tgz = packPayload(path.join(root, 'src'), path.join(root, 'tarballs'));
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads('c'.repeat(64)));
  const r = await runLauncher(bin, ['version'], baseEnv(root, { SECOND_CLI_PAYLOAD_PACKAGE: tgz }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to run .* was released with c{64}/);
  assert.doesNotMatch(r.stdout, /args:/);
  const scopeDir = path.join(root, 'home', '.second', 'cli-payloads', PAYLOAD.split('/')[0]);
  assert.deepEqual(fs.readdirSync(scopeDir), [], 'a refused payload was kept');
});

test('a failing npm install reports it and leaves nothing behind', async (t) => {
  const root = tempDir(t);
  const bin = makeLauncher(path.join(root, 'cli'), hostPayloads('d'.repeat(64)));
  const missing = path.join(root, 'does-not-exist.tgz');
  const r = await runLauncher(bin, ['version'], baseEnv(root, { SECOND_CLI_PAYLOAD_PACKAGE: missing }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /npm install .*does-not-exist\.tgz failed \(exit \d+\)/);
  assert.match(r.stderr, /  npm: /, 'npm output is not relayed');
  const scopeDir = path.join(root, 'home', '.second', 'cli-payloads', PAYLOAD.split('/')[0]);
  assert.deepEqual(fs.readdirSync(scopeDir), []);
});
