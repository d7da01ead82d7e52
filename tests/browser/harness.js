// The browser tests' harness: a real `meshwork serve` on a free loopback port with its own
// temporary data directory (SQLite), optionally with a real SMTP server (Debian's aiosmtpd
// running the Rust tests' sink) whose mail a test reads, headless Chromium from Debian, axe-core
// for accessibility, and screenshots under docs/screenshots/.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, readFile, mkdir, readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
const require = createRequire(import.meta.url);

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until something listens on 127.0.0.1:`port`. */
export async function listening(port, what) {
  const started = Date.now();
  for (;;) {
    const up = await new Promise((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() - started > 10_000) throw new Error(`${what} did not start in 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The SMTP sink of the Rust tests (crates/meshwork-testkit), writing each message to `out`. */
async function startSmtp(out) {
  const port = await freePort();
  const script = join(repo, 'crates', 'meshwork-testkit', 'src', 'smtp_sink.py');
  const child = spawn('/usr/bin/python3', [script, '127.0.0.1', String(port), out, '0'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await listening(port, 'the SMTP server');
  return { port, child };
}

/** A message's text body: quoted-printable soft breaks and escapes undone. */
function decoded(raw) {
  const body = raw.split('\r\n\r\n').slice(1).join('\r\n\r\n');
  return body
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Starts `meshwork serve` (MESHWORK_BIN, or the debug build) and waits for /healthz. With
 * `{ smtp: true }` its mail goes to a real SMTP server, read back with `server.mailTo(address)`.
 */
export async function startServer(env = {}, { smtp = false } = {}) {
  const bin = process.env.MESHWORK_BIN ?? join(repo, 'target', 'debug', 'meshwork');
  const dir = await mkdtemp(join(tmpdir(), 'meshwork-browser-'));
  const mailDir = await mkdtemp(join(tmpdir(), 'meshwork-browser-mail-'));
  const sink = smtp ? await startSmtp(mailDir) : null;
  const mailEnv = sink
    ? {
        MESHWORK_SMTP__HOST: '127.0.0.1',
        MESHWORK_SMTP__PORT: String(sink.port),
        MESHWORK_SMTP__TLS: 'none',
        MESHWORK_SMTP__FROM: 'Meshwork <meshwork@browser.test>',
      }
    : {};
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const child = spawn(bin, ['serve', '--data-dir', dir, '--listen', `127.0.0.1:${port}`], {
    env: {
      PATH: process.env.PATH,
      MESHWORK_LOG: 'error',
      MESHWORK_PUBLIC_URL: url,
      MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE: '1000',
      MESHWORK_AUTH__SIGNUPS_PER_HOUR: '1000',
      ...mailEnv,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const started = Date.now();
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {}
    if (child.exitCode !== null) throw new Error(`meshwork serve exited with ${child.exitCode}`);
    if (Date.now() - started > 30_000) throw new Error('meshwork serve did not start in 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    dir,
    /**
     * The text of the newest message to `address` whose text matches `pattern`, waiting up to
     * 10 s for one to arrive.
     */
    async mailTo(address, pattern = /./) {
      const started = Date.now();
      for (;;) {
        const names = (await readdir(mailDir)).filter((n) => n.endsWith('.eml')).sort().reverse();
        for (const n of names) {
          const raw = await readFile(join(mailDir, n), 'utf8');
          const to = raw.match(/^X-Envelope-To: (.*)$/m)?.[1] ?? '';
          const text = decoded(raw);
          if (to.split(',').includes(address) && pattern.test(text)) return text;
        }
        if (Date.now() - started > 10_000) throw new Error(`no mail to ${address} in 10 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /**
     * Makes every session's last proof of identity `minutes` old, as if time had passed, by
     * writing the server's SQLite file (the one column, a plain number) with Python's sqlite3.
     */
    async ageSessions(minutes) {
      const at = Date.now() - minutes * 60_000;
      const script = `import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('UPDATE sessions SET reauth_at = ?', (int(sys.argv[2]),))\nc.commit()`;
      await new Promise((resolve, reject) => {
        const p = spawn('python3', ['-c', script, join(dir, 'meshwork.db'), String(at)], { stdio: ['ignore', 'ignore', 'inherit'] });
        p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`python3 sqlite3 exited with ${code}`))));
      });
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      sink?.child.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
      await rm(mailDir, { recursive: true, force: true });
    },
  };
}

/** Headless Chromium from Debian (browsers cannot be downloaded here). */
export async function launch() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' });
}

let axeSource;
/**
 * Runs axe-core on the page (injected with `evaluate`: the pages' CSP refuses injected script
 * tags) and answers the violations of WCAG 2.x A and AA rules.
 */
export async function axeViolations(page) {
  axeSource ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    }),
  );
  return result.violations.map((v) => ({
    id: v.id,
    help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' ')),
  }));
}

/** The three looks every page is checked and pictured in. */
export const LOOKS = [
  { name: 'light', colorScheme: 'light', viewport: { width: 1280, height: 800 } },
  { name: 'dark', colorScheme: 'dark', viewport: { width: 1280, height: 800 } },
  { name: 'phone', colorScheme: 'light', viewport: { width: 360, height: 740 } },
];

/** Writes docs/screenshots/<name>-<look>.png. */
export async function screenshot(page, name, look) {
  const out = join(repo, 'docs', 'screenshots');
  await mkdir(out, { recursive: true });
  await page.screenshot({ path: join(out, `${name}-${look}.png`), fullPage: true });
}

/** The password every test account uses. */
export const PASSWORD = 'correct horse battery staple';

/** Creates an account on the sign-up page, as a person does, up to "Check your inbox". */
export async function signUp(page, server, name, email) {
  await page.goto(`${server.url}/sign-up`);
  await page.getByLabel('Your name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('I am 16 or over').check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Check your inbox' }).waitFor();
}

/** Fills in and sends the sign-in form. */
export async function signIn(page, server, email, password = PASSWORD) {
  await page.goto(`${server.url}/sign-in`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
