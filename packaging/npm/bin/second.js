#!/usr/bin/env node
// @second-inc/cli launcher: find the payload package for this
// platform, install it on first use, check its manifest.json against the
// digest this package was released with, and run its bin/second.
// Zero dependencies on purpose: it runs before anything else is installed.
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const PROGRESS_INTERVAL_MS = 10_000;
const STALE_TEMP_MS = 60 * 60 * 1000;

// LauncherError is a failure explained to the user; anything else is a bug.
class LauncherError extends Error {}

function readOwnPackage() {
  const file = path.join(__dirname, '..', 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function usage(pkg) {
  return `Usage: npx --yes ${pkg.name} [command] [flags]

Runs Second locally: MongoDB, Redis, the web app and the worker on loopback.

Commands (handled by the installed runtime):
  start|run [--port N] [--no-open] [--disable-telemetry] [--home DIR]
                        start the local stack (default)
  stop                  stop it
  status [--json]       show what is running
  logs [SERVICE] [-f] [-n N]
                        show logs (web, worker, mongo, redis, supervisor)
  reset [--yes]         delete local data
  doctor                check the installation against its manifest
  version               print the version

The first run installs ${payloadNamePattern(pkg)} for your platform into
$SECOND_HOME/cli-payloads (default ~/.second/cli-payloads) using your npm
configuration.

Environment:
  SECOND_HOME                 home directory (default ~/.second)
  SECOND_CLI_PAYLOAD_DIR      run this local payload package directory instead
  SECOND_CLI_PAYLOAD_PACKAGE  npm spec to install instead of <payload>@${pkg.version}

Launcher ${pkg.name}@${pkg.version}
`;
}

function payloadNamePattern(pkg) {
  const names = Object.values(pkg.secondPayloads || {}).map((p) => p.name);
  if (names.length === 0) return 'the payload package';
  return names[0].replace(/-[^-]+-[^-]+$/, '-<platform>');
}

function platformId() {
  return `${process.platform}-${process.arch}`;
}

// resolvePayload maps a platform id to the payload this launcher records.
function resolvePayload(pkg, id) {
  const payloads = pkg.secondPayloads || {};
  const entry = Object.prototype.hasOwnProperty.call(payloads, id) ? payloads[id] : undefined;
  if (entry && entry.name && entry.manifestSha256) return entry;
  const supported = Object.keys(payloads).sort();
  if (supported.length === 0) {
    throw new LauncherError(
      `${pkg.name}@${pkg.version} records no payload packages (is this an unreleased copy?). ` +
        'Set SECOND_CLI_PAYLOAD_DIR to a payload package directory to run one directly.',
    );
  }
  if (id.startsWith('win32-')) {
    throw new LauncherError(
      `Second does not run natively on Windows (${id}). Install WSL2 ` +
        '(https://learn.microsoft.com/windows/wsl/install) and run ' +
        `\`npx --yes ${pkg.name}\` inside its Linux shell. Supported platforms: ${supported.join(', ')}.`,
    );
  }
  throw new LauncherError(
    `Second does not support this platform (${id}). Supported platforms: ${supported.join(', ')}.`,
  );
}

// quietNpm turns off npm's update notifier, funding and audit messages for
// every npm this launcher (and the runtime it starts) runs, through the
// environment: the user's .npmrc is never edited.
function quietNpm(env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    if (!/^npm_config_(update_notifier|fund|audit)$/i.test(k)) out[k] = v;
  }
  return { ...out, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

function secondHome(env) {
  if (env.SECOND_HOME) return path.resolve(env.SECOND_HOME);
  return path.join(os.homedir(), '.second');
}

// installRoot is ~/.second/cli-payloads/<name>@<version>, the npm --prefix
// the payload is installed under.
function installRoot(home, name, version) {
  return path.join(home, 'cli-payloads', `${name}@${version}`);
}

function packageDir(prefix, name) {
  return path.join(prefix, 'node_modules', ...name.split('/'));
}

function sha256File(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function sameDigest(a, b) {
  const x = Buffer.from(String(a).toLowerCase());
  const y = Buffer.from(String(b).toLowerCase());
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

// verifyManifest refuses a payload whose manifest.json is not the one this
// launcher was released with; `second doctor` then checks every file
// against that manifest.
function verifyManifest(dir, want, { pkg, id, hint }) {
  const file = path.join(dir, 'manifest.json');
  let got;
  try {
    got = sha256File(file);
  } catch (err) {
    throw new LauncherError(`${dir} is not a Second payload: cannot read manifest.json (${err.code || err.message}). ${hint}`);
  }
  if (!sameDigest(got, want)) {
    throw new LauncherError(
      `refusing to run ${dir}: its manifest.json has sha256 ${got}, but ${pkg.name}@${pkg.version} ` +
        `was released with ${want} for ${id}. ${hint}`,
    );
  }
}

function removeQuietly(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort: a leftover temp dir is harmless and never used
  }
}

// redact hides credentials a spec URL may carry (https://user:token@host/…)
// before it is printed.
function redact(spec) {
  return String(spec).replace(/\/\/[^/@\s]*@/, '//***@');
}

// pruneStaleTemps removes temp dirs that a killed install (SIGKILL, power
// loss) left behind; an hour is far longer than any live install takes.
function pruneStaleTemps(parent, base) {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const entry of fs.readdirSync(parent)) {
    if (!entry.startsWith(`.${base}.tmp-`)) continue;
    const dir = path.join(parent, entry);
    try {
      if (fs.statSync(dir).mtimeMs < cutoff) removeQuietly(dir);
    } catch {
      // gone already
    }
  }
}

// install runs `npm install --prefix <tmp> <spec>` with the user's own npm
// configuration, checks the result, and renames it into place so an
// interrupted install never leaves a half payload where the launcher looks.
function install({ spec, name, prefix, want, pkg, id, env, log }) {
  const shown = redact(spec);
  return new Promise((resolve, reject) => {
    const parent = path.dirname(prefix);
    fs.mkdirSync(parent, { recursive: true });
    pruneStaleTemps(parent, path.basename(prefix));
    const tmp = fs.mkdtempSync(path.join(parent, `.${path.basename(prefix)}.tmp-`));
    const started = Date.now();
    log(`second: installing ${shown} for ${id} (first run of this version; this can take a minute)`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const args = ['install', '--prefix', tmp, '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel', 'warn', spec];
    const child = childProcess.spawn(npm, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });

    const relay = (chunk) => {
      const text = chunk.toString();
      for (const line of text.split('\n')) if (line.trim()) log(`  npm: ${line.trimEnd()}`);
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    const ticker = setInterval(() => {
      log(`second: still installing ${shown} (${Math.round((Date.now() - started) / 1000)}s)`);
    }, PROGRESS_INTERVAL_MS);

    // An interrupted install must not leave its temp dir behind.
    const onSignal = (sig) => {
      clearInterval(ticker);
      child.kill(sig);
      removeQuietly(tmp);
      process.exit(128 + (os.constants.signals[sig] || 1));
    };
    for (const s of FORWARDED_SIGNALS) process.on(s, onSignal);
    const done = (err, dir) => {
      clearInterval(ticker);
      for (const s of FORWARDED_SIGNALS) process.removeListener(s, onSignal);
      if (err) {
        removeQuietly(tmp);
        reject(err);
      } else resolve(dir);
    };

    child.on('error', (err) => {
      done(new LauncherError(`cannot run ${npm} to install ${shown}: ${err.message}. Install Node.js with npm, or set SECOND_CLI_PAYLOAD_DIR.`));
    });
    child.on('close', (code, signal) => {
      if (code !== 0) {
        done(
          new LauncherError(
            `npm install ${shown} failed (${signal ? `signal ${signal}` : `exit ${code}`}). ` +
              'Check your network and npm login (`npm whoami`; restricted packages need access to the scope).',
          ),
        );
        return;
      }
      const installed = packageDir(tmp, name);
      try {
        if (!fs.existsSync(path.join(installed, 'package.json'))) {
          throw new LauncherError(`npm install ${shown} did not install ${name} (is the spec right?)`);
        }
        verifyManifest(installed, want, {
          pkg,
          id,
          hint: 'The installed package is not the payload of this release; nothing was kept.',
        });
        try {
          fs.renameSync(tmp, prefix);
        } catch (err) {
          // Another launcher finished first: use its complete install.
          if (!['EEXIST', 'ENOTEMPTY', 'EPERM'].includes(err.code) || !fs.existsSync(prefix)) throw err;
          removeQuietly(tmp);
        }
      } catch (err) {
        done(err);
        return;
      }
      log(`second: installed ${shown} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      done(null, packageDir(prefix, name));
    });
  });
}

// findPayload picks the payload dir and verifies it: SECOND_CLI_PAYLOAD_DIR
// when set, else the install under the home, else a fresh install.
async function findPayload(pkg, env, log) {
  const id = platformId();
  const payloads = pkg.secondPayloads || {};
  if (env.SECOND_CLI_PAYLOAD_DIR) {
    const dir = path.resolve(env.SECOND_CLI_PAYLOAD_DIR);
    const entry = payloads[id];
    if (entry && entry.manifestSha256) {
      verifyManifest(dir, entry.manifestSha256, {
        pkg,
        id,
        hint: 'Point SECOND_CLI_PAYLOAD_DIR at the payload built with this launcher, or unset it.',
      });
    } else {
      // Development mode: a launcher straight from the repository records
      // no digests, so there is nothing to check against.
      log(`second: SECOND_CLI_PAYLOAD_DIR=${dir} runs unverified (${pkg.name}@${pkg.version} records no digest for ${id})`);
    }
    return dir;
  }
  const entry = resolvePayload(pkg, id);
  const prefix = installRoot(secondHome(env), entry.name, pkg.version);
  const dir = packageDir(prefix, entry.name);
  if (fs.existsSync(prefix)) {
    verifyManifest(dir, entry.manifestSha256, {
      pkg,
      id,
      hint: `Remove ${prefix} and run again to reinstall it.`,
    });
    return dir;
  }
  const spec = env.SECOND_CLI_PAYLOAD_PACKAGE || `${entry.name}@${pkg.version}`;
  return install({ spec, name: entry.name, prefix, want: entry.manifestSha256, pkg, id, env, log });
}

// run starts bin/second, forwards signals to it, and mirrors its exit.
function run(bin, args, env) {
  const child = childProcess.spawn(bin, args, { stdio: 'inherit', env });
  const forward = {};
  for (const s of FORWARDED_SIGNALS) {
    forward[s] = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(s);
    };
    process.on(s, forward[s]);
  }
  child.on('error', (err) => {
    process.stderr.write(`second: cannot run ${bin}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward[s]);
    if (signal) {
      // Die the same way so the caller's shell sees the signal; if it is
      // one Node ignores (SIGPIPE), fall back to the shell convention.
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + (os.constants.signals[signal] || 0)), 200).unref();
      return;
    }
    process.exit(code === null ? 1 : code);
  });
}

async function main(argv) {
  const log = (line) => process.stderr.write(`${line}\n`);
  const pkg = readOwnPackage();
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(usage(pkg));
    return;
  }
  const env = quietNpm(process.env);
  const dir = await findPayload(pkg, env, log);
  const bin = path.join(dir, 'bin', 'second');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch (err) {
    throw new LauncherError(`${bin} is missing or not executable (${err.code}). Remove the payload install and run again.`);
  }
  run(bin, argv, {
    ...env,
    SECOND_CLI_RELEASE_PACKAGE: pkg.name,
    SECOND_CLI_RELEASE_VERSION: pkg.version,
    SECOND_NODE: process.execPath,
    SECOND_LAUNCHED_BY_CLI: '1',
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    if (err instanceof LauncherError) {
      process.stderr.write(`second: ${err.message}\n`);
    } else {
      process.stderr.write(`second: unexpected error: ${err && err.stack ? err.stack : err}\n`);
    }
    process.exit(1);
  });
}

module.exports = { LauncherError, redact, quietNpm, usage, platformId, resolvePayload, secondHome, installRoot, packageDir, verifyManifest };
