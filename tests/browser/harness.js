// The browser tests' harness: a real `meshwork serve` on a free loopback port with its own
// temporary data directory (SQLite), headless Chromium from Debian, axe-core for accessibility,
// and screenshots under docs/screenshots/.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, readFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
const require = createRequire(import.meta.url);

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `meshwork serve` (MESHWORK_BIN, or the debug build) and waits for /healthz. */
export async function startServer(env = {}) {
  const bin = process.env.MESHWORK_BIN ?? join(repo, 'target', 'debug', 'meshwork');
  const dir = await mkdtemp(join(tmpdir(), 'meshwork-browser-'));
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const child = spawn(bin, ['serve', '--data-dir', dir, '--listen', `127.0.0.1:${port}`], {
    env: {
      PATH: process.env.PATH,
      MESHWORK_LOG: 'error',
      MESHWORK_PUBLIC_URL: url,
      MESHWORK_AUTH__LOGIN_ATTEMPTS_PER_MINUTE: '1000',
      MESHWORK_AUTH__SIGNUPS_PER_HOUR: '1000',
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
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
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
