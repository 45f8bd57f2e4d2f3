// What the Node compatibility tests share: starting `sluice sandbox` over HTTPS on a free
// port (and stopping it), and JSON requests to it that trust its fresh CA.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The sluice binary: $SLUICE_BIN, else the debug build of this checkout. */
export function sluiceBin() {
  if (process.env.SLUICE_BIN) return process.env.SLUICE_BIN;
  const target = process.env.CARGO_TARGET_DIR || 'target';
  const candidate = path.resolve(REPO, target, 'debug', 'sluice');
  if (fs.existsSync(candidate)) return candidate;
  const meta = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: REPO, encoding: 'utf8' }),
  );
  return path.join(meta.target_directory, 'debug', 'sluice');
}

/**
 * Starts `sluice sandbox --tls` on a free port with `args` added, in a fresh directory
 * named after `name`; resolves with the process, its `--json` line and that directory.
 */
export async function startSandbox(name, args) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `sluice-${name}-`));
  const log = fs.openSync(path.join(work, 'sandbox.log'), 'w');
  const all = ['sandbox', '--tls', '--ca-file', path.join(work, 'ca.pem'), '--port', '0', '--json', ...args];
  // If this process ends without stopping it, the sandbox must not outlive it: the test
  // runner SIGKILLs a file's process when the runner itself dies (e.g. EPIPE on its
  // stdout), so on Linux ask the kernel to SIGTERM the sandbox then (setpriv).
  const [cmd, argv] = fs.existsSync('/usr/bin/setpriv')
    ? ['/usr/bin/setpriv', ['--pdeathsig', 'TERM', '--', sluiceBin(), ...all]]
    : [sluiceBin(), all];
  const proc = spawn(cmd, argv, { cwd: work, stdio: ['ignore', 'pipe', log] });
  process.once('exit', () => proc.exitCode === null && proc.kill('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      proc.kill('SIGKILL');
      process.exit(1);
    });
  }
  const exited = new Promise((_, reject) => proc.once('exit', (code) => reject(
    new Error(`sandbox exited (${code}):\n${fs.readFileSync(path.join(work, 'sandbox.log'), 'utf8')}`))));
  const firstLine = new Promise((resolve) => readline.createInterface({ input: proc.stdout }).once('line', resolve));
  const info = JSON.parse(await Promise.race([firstLine, exited]));
  proc.stdout.resume();
  return { proc, info, work };
}

/** Stops a sandbox `startSandbox` started: SIGTERM, then SIGKILL after 15 s. */
export async function stopSandbox(proc) {
  if (!proc || proc.exitCode !== null) return;
  const done = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
  await done;
  clearTimeout(timer);
}

/**
 * A JSON request over `agent` (which trusts the sandbox's CA): `body` as JSON or `form`
 * as a form, `bearer` as the access token; resolves with the parsed answer (`lines: true`:
 * NDJSON, one object per line; an empty answer: null), rejects on a status of 300 or more.
 */
export function requestJson(agent, method, url, { body, form, bearer, lines = false } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    let data;
    if (form) {
      data = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (body !== undefined) {
      data = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const req = https.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode >= 300) return reject(new Error(`${method} ${url}: ${res.statusCode} ${text}`));
        if (!text) return resolve(null);
        resolve(lines ? text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)) : JSON.parse(text));
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}
