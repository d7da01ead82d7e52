// Settings in the browser: two-factor enrolment and sign-in with a code, and signing out every
// other device. Controls are found by their labels and roles.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import * as harness from './harness.js';
import { startServer, launch, axeViolations, LOOKS, screenshot, PASSWORD } from './harness.js';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** RFC 6238: the 6-digit SHA-1 code of a base32 key for the 30-second step `offset` from now. */
function totp(base32, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const mac = createHmac('sha1', key).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

async function signUpAndIn(page, email) {
  await harness.signUp(page, server, 'Set Tings', email);
  await signIn(page, email);
  await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();
}

const signIn = (page, email) => harness.signIn(page, server, email);

test('two-factor enrolment, then sign-in with a code', async () => {
  const page = await browser.newPage();
  await signUpAndIn(page, 'mfa@browser.test');
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const key = (await page.locator('#totp-secret').innerText()).trim();
  // The key comes as a QR code too, drawn on the server.
  await page.getByRole('img', { name: /QR code holding the key/ }).locator('svg').waitFor();
  assert.deepEqual(await axeViolations(page), [], 'two-factor set-up');
  await screenshot(page, 'mfa-setup', 'light');
  // A wrong code is named and the set-up stays.
  await page.getByLabel('Code from your authenticator app').fill('000000');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
  await page.locator('#mfa-error').waitFor();
  assert.equal((await page.locator('#totp-secret').innerText()).trim(), key);
  await page.getByLabel('Code from your authenticator app').fill(totp(key, 0));
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
  await page.getByText('Keep these recovery codes somewhere safe').waitFor();
  assert.equal(await page.locator('.codes li').count(), 10);
  const codes = (await page.locator('.codes li').allInnerTexts()).map((c) => c.trim());
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  // The password alone is not enough now.
  await signIn(page, 'mfa@browser.test');
  await page.getByLabel('Code from your authenticator app').waitFor();
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  // The step just used is spent: the next one (within the allowed skew) signs in.
  await page.getByLabel('Code from your authenticator app').fill(totp(key, 1));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();
  // The device is lost: a recovery code makes new codes (the old ones stop working)...
  await page.getByRole('link', { name: 'Account' }).click();
  const mfa = page.locator('section[aria-labelledby=mfa-heading]');
  for (const look of LOOKS) {
    await page.emulateMedia({ colorScheme: look.colorScheme });
    await page.setViewportSize(look.viewport);
    await mfa.screenshot({ path: `../../docs/screenshots/mfa-on-${look.name}.png` });
  }
  assert.deepEqual(await axeViolations(page), [], 'two-factor authentication on');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(LOOKS[0].viewport);
  const renew = page.getByRole('form', { name: 'New recovery codes' });
  await renew.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await renew.getByLabel('Code from your authenticator app, or a recovery code').fill(codes[0]);
  await renew.getByRole('button', { name: 'Make new recovery codes' }).click();
  await page.getByText('Any older codes no longer work').waitFor();
  const fresh = (await page.locator('.codes li').allInnerTexts()).map((c) => c.trim());
  assert.equal(fresh.length, 10);
  assert.ok(!fresh.includes(codes[1]));
  await screenshot(page, 'mfa-new-codes', 'light');
  // ...and one of the new ones turns two-factor authentication off.
  await page.goto(`${server.url}/settings`);
  const off = page.getByRole('form', { name: 'Turn it off' });
  await off.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await off.getByLabel('Code from your authenticator app, or a recovery code').fill(fresh[0]);
  await off.getByRole('button', { name: 'Turn off two-factor authentication' }).click();
  await page.getByText('Two-factor authentication is off.').waitFor();
  await page.close();
});

/** Turns on two-factor authentication from the settings page; answers the app's key. */
async function enrolTotp(page) {
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const key = (await page.locator('#totp-secret').innerText()).trim();
  await page.getByLabel('Code from your authenticator app').fill(totp(key, 0));
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
  await page.getByText('Keep these recovery codes somewhere safe').waitFor();
  return key;
}

test('a security key is added in settings and signs in in place of a code', async () => {
  const page = await browser.newPage();
  // Chromium's virtual authenticator: a USB security key that is always touched.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'usb',
      hasResidentKey: false,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await signUpAndIn(page, 'key@browser.test');
  await page.getByRole('link', { name: 'Account' }).click();
  const keys = page.locator('section[aria-labelledby=keys-heading]');
  // Keys come after the authenticator app.
  await keys.getByText('Set up two-factor authentication with an authenticator app first').waitFor();
  const key = await enrolTotp(page);
  await page.goto(`${server.url}/settings`);
  await keys.getByText('No security keys yet.').waitFor();
  await keys.getByLabel('Name of the new key').fill('Desk key');
  await keys.getByRole('button', { name: 'Add a security key' }).click();
  // The browser asks the key, and the page sends its answer on its own.
  await page.getByText('Your security key is added: you can sign in with it.').waitFor();
  await keys.getByText('Desk key').waitFor();
  await keys.getByText('not used yet').waitFor();
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'the key holds one credential for this server');
  assert.equal(credentials[0].rpId, 'localhost');
  for (const look of LOOKS) {
    await page.emulateMedia({ colorScheme: look.colorScheme });
    await page.setViewportSize(look.viewport);
    await keys.screenshot({ path: `../../docs/screenshots/security-keys-${look.name}.png` });
  }
  assert.deepEqual(await axeViolations(page), [], 'security keys in settings');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(LOOKS[0].viewport);

  // Signing in: the password, then the key, with no code typed.
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await signIn(page, 'key@browser.test');
  await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();
  await page.getByRole('link', { name: 'Account' }).click();
  await keys.getByText(/last used/).waitFor();

  // Without the key at hand (it is unplugged), the sign-in page offers it, and a code works.
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await signIn(page, 'key@browser.test');
  await page.getByRole('heading', { name: 'Use your security key' }).waitFor();
  for (const look of LOOKS) {
    await page.emulateMedia({ colorScheme: look.colorScheme });
    await page.setViewportSize(look.viewport);
    await screenshot(page, 'sign-in-security-key', look.name);
    assert.deepEqual(await axeViolations(page), [], `sign-in with a security key (${look.name})`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(LOOKS[0].viewport);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Code from your authenticator app').fill(totp(key, 1));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();

  // Removing the key (the sign-in just now confirmed it is me).
  await page.getByRole('link', { name: 'Account' }).click();
  await keys.getByRole('button', { name: 'Remove Desk key' }).click();
  await page.getByText('The security key is removed.').waitFor();
  await keys.getByText('No security keys yet.').waitFor();
  await page.close();
});

test('with two-factor authentication on, a password reset asks for a code too', async () => {
  // A server of its own, whose mail goes to a real SMTP server the test reads.
  const mailed = await startServer({}, { smtp: true });
  const page = await browser.newPage();
  try {
    await harness.signUp(page, mailed, 'Re Set', 'reset@browser.test');
    await harness.signIn(page, mailed, 'reset@browser.test');
    await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();
    await page.getByRole('link', { name: 'Account' }).click();
    const key = await enrolTotp(page);
    await page.getByRole('button', { name: 'Sign out' }).first().click();
    await page.goto(`${mailed.url}/forgot-password`);
    await page.getByLabel('Email').fill('reset@browser.test');
    await page.getByRole('button', { name: 'Send me a link' }).click();
    const mail = await mailed.mailTo('reset@browser.test', /reset-password\?token=/);
    await page.goto(mail.match(/https?:\/\/\S*reset-password\?token=\S+/)[0]);
    const fresh = 'a brand new passphrase';
    await page.getByLabel('New password').fill(fresh);
    await page.getByRole('button', { name: 'Set new password' }).click();
    // The mailbox alone is not enough: the page asks for a code, and the link still works.
    await page.getByText('Your account has two-factor authentication').waitFor();
    for (const look of LOOKS) {
      await page.emulateMedia({ colorScheme: look.colorScheme });
      await page.setViewportSize(look.viewport);
      await screenshot(page, 'reset-needs-code', look.name);
      assert.deepEqual(await axeViolations(page), [], `reset asking for a code (${look.name})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(LOOKS[0].viewport);
    await page.getByLabel('New password').fill(fresh);
    await page.getByLabel('Code from your authenticator app, or a recovery code').fill(totp(key, 1));
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('heading', { name: 'Your password is changed' }).waitFor();
  } finally {
    await page.close();
    await mailed.stop();
  }
});

test('signing out every other device from settings', async () => {
  const laptop = await browser.newContext();
  const phone = await browser.newContext({ userAgent: 'Mozilla/5.0 (iPhone) Safari/605.1' });
  const a = await laptop.newPage();
  const b = await phone.newPage();
  await signUpAndIn(a, 'sessions@browser.test');
  await signIn(b, 'sessions@browser.test');
  await b.getByRole('heading', { name: 'Your workspaces' }).waitFor();
  await a.goto(`${server.url}/settings`);
  await a.getByText('This device').waitFor();
  await a.getByText('Safari on iPhone').waitFor();
  // The profile: a new name and a picture, saved.
  await a.getByLabel('Your name').fill('Settie Tings');
  await a.getByLabel('Job title').fill('Operator');
  await a.getByRole('button', { name: 'Save profile' }).click();
  await a.getByRole('status').filter({ hasText: 'Your profile is saved.' }).waitFor();
  assert.equal(await a.getByLabel('Your name').inputValue(), 'Settie Tings');
  await a.getByLabel('Your picture').setInputFiles({ name: 'not-a-picture.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
  await a.getByRole('button', { name: 'Upload picture' }).click();
  await a.getByRole('alert').filter({ hasText: 'PNG, JPEG, GIF or WebP' }).waitFor();
  const dot = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
  await a.getByLabel('Your picture').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: Buffer.from(dot, 'base64') });
  await a.getByRole('button', { name: 'Upload picture' }).click();
  await a.getByRole('status').filter({ hasText: 'Your picture is saved.' }).waitFor();
  assert.ok(await a.getByRole('img', { name: 'Your picture' }).evaluate((img) => img.complete && img.naturalWidth === 1));
  for (const look of LOOKS) {
    const view = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport, storageState: await laptop.storageState() });
    const p = await view.newPage();
    await p.goto(`${server.url}/settings`);
    assert.deepEqual(await axeViolations(p), [], `settings (${look.name})`);
    await screenshot(p, 'settings', look.name);
    await view.close();
  }
  await a.getByRole('button', { name: 'Sign out everywhere else' }).click();
  await a.getByText('Every other device is signed out.').waitFor();
  await b.goto(`${server.url}/`);
  await b.getByRole('heading', { name: 'Sign in' }).waitFor();
  await laptop.close();
  await phone.close();
});

test('after 5 minutes, signing out other devices asks for the password again', async () => {
  const laptop = await browser.newContext();
  const phone = await browser.newContext({ userAgent: 'Mozilla/5.0 (iPhone) Safari/605.1' });
  const a = await laptop.newPage();
  const b = await phone.newPage();
  await signUpAndIn(a, 'confirm@browser.test');
  await signIn(b, 'confirm@browser.test');
  await b.getByRole('heading', { name: 'Your workspaces' }).waitFor();
  await server.ageSessions(6);
  await a.goto(`${server.url}/settings`);
  await a.getByText('Safari on iPhone').waitFor();
  assert.equal(await a.getByRole('button', { name: 'Sign out everywhere else' }).count(), 0);
  for (const look of LOOKS) {
    const view = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport, storageState: await laptop.storageState() });
    const p = await view.newPage();
    await p.goto(`${server.url}/settings#sessions-heading`);
    assert.deepEqual(await axeViolations(p), [], `settings, confirm (${look.name})`);
    await p.getByLabel('Your password, to sign out other devices').scrollIntoViewIfNeeded();
    await screenshot(p, 'settings-confirm', look.name);
    await view.close();
  }
  const password = a.getByLabel('Your password, to sign out other devices');
  await password.fill('not my password');
  await a.getByRole('button', { name: 'Confirm it is you' }).click();
  await a.getByRole('alert').filter({ hasText: 'password is wrong' }).waitFor();
  await a.getByLabel('Your password, to sign out other devices').fill(PASSWORD);
  await a.getByRole('button', { name: 'Confirm it is you' }).click();
  await a.getByRole('status').filter({ hasText: 'for 5 minutes you can sign out' }).waitFor();
  await a.getByRole('button', { name: 'Sign out everywhere else' }).click();
  await a.getByText('Every other device is signed out.').waitFor();
  await b.goto(`${server.url}/`);
  await b.getByRole('heading', { name: 'Sign in' }).waitFor();
  // A workspace's export links and role controls wait for the same confirmation.
  await a.goto(`${server.url}/`);
  await a.getByLabel('Workspace name').fill('Confirmed Co');
  await a.getByRole('button', { name: 'Create workspace' }).click();
  await a.getByRole('heading', { name: 'Confirmed Co' }).waitFor();
  const ws = new URL(a.url()).pathname.split('/')[2];
  await server.ageSessions(6);
  await a.goto(`${server.url}/w/${ws}/settings#export-h`);
  assert.equal(await a.getByRole('link', { name: 'contacts.csv' }).count(), 0);
  for (const look of LOOKS) {
    const view = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport, storageState: await laptop.storageState() });
    const p = await view.newPage();
    await p.goto(`${server.url}/w/${ws}/settings`);
    assert.deepEqual(await axeViolations(p), [], `workspace settings, confirm (${look.name})`);
    await p.getByLabel('Your password, to export').scrollIntoViewIfNeeded();
    await screenshot(p, 'workspace-settings-confirm', look.name);
    await view.close();
  }
  await a.getByLabel('Your password, to export').fill(PASSWORD);
  await a.locator('form', { has: a.getByLabel('Your password, to export') }).getByRole('button', { name: 'Confirm it is you' }).click();
  await a.getByRole('link', { name: 'contacts.csv' }).waitFor();
  await laptop.close();
  await phone.close();
});

test('a chosen theme and text size apply at once and are remembered', async () => {
  const page = await browser.newPage();
  await signUpAndIn(page, 'looks@browser.test');
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('heading', { name: 'Appearance' }).waitFor();
  assert.equal(await page.getByLabel('Follow the system').isChecked(), true);
  await page.getByLabel('Dark').check();
  await page.getByLabel('Larger').check();
  const looks = () => page.evaluate(() => [document.documentElement.dataset.theme, document.documentElement.dataset.size]);
  assert.deepEqual(await looks(), ['dark', 'large']);
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(await background(), 'rgb(13, 17, 23)');
  // Another page of the app, after a reload: the same look.
  await page.goto(`${server.url}/`);
  assert.deepEqual(await looks(), ['dark', 'large']);
  assert.equal(await background(), 'rgb(13, 17, 23)');
  assert.deepEqual(await axeViolations(page), [], 'dark and larger');
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByLabel('Follow the system').check();
  await page.getByLabel('Standard').check();
  assert.deepEqual(await looks(), [undefined, undefined]);
  await page.close();
});

test('mail preferences, downloading my data and deleting my account from settings', async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await signUpAndIn(page, 'rights@browser.test');
  await page.goto(`${server.url}/settings`);
  // Product news: on by default, declined with the checkbox.
  const news = page.getByLabel('Send me product news');
  assert.equal(await news.isChecked(), true);
  await news.uncheck();
  await page.getByRole('button', { name: 'Save mail preferences' }).click();
  await page.getByRole('status').filter({ hasText: 'Your mail preferences are saved.' }).waitFor();
  assert.equal(await page.getByLabel('Send me product news').isChecked(), false);
  // The data export asks for the password again; a wrong one is named.
  await page.getByLabel('Your password').nth(0).waitFor();
  const exportPassword = page.locator('#export-password');
  await exportPassword.fill('not my password');
  await page.getByRole('button', { name: 'Download as JSON' }).click();
  await page.locator('#export-error').waitFor();
  for (const look of LOOKS) {
    const view = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport, storageState: await context.storageState() });
    const p = await view.newPage();
    await p.goto(`${server.url}/settings#data-heading`);
    await p.getByRole('heading', { name: 'Delete your account' }).scrollIntoViewIfNeeded();
    assert.deepEqual(await axeViolations(p), [], `settings rights (${look.name})`);
    await screenshot(p, 'settings-rights', look.name);
    await view.close();
  }
  await page.locator('#export-password').fill(PASSWORD);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download as JSON' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'meshwork-account.json');
  const data = JSON.parse(await (await download.createReadStream()).toArray().then((c) => Buffer.concat(c).toString()));
  assert.equal(data.profile.email, 'rights@browser.test');
  assert.equal(data.marketing_opt_out, true);
  // Deleting the account: the email typed out and the password again.
  await page.goto(`${server.url}/settings`);
  await page.getByLabel('Type your email address to confirm').fill('someone@else.test');
  await page.locator('#delete-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await page.locator('#delete-error').waitFor();
  await page.getByLabel('Type your email address to confirm').fill('rights@browser.test');
  await page.locator('#delete-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await signIn(page, 'rights@browser.test');
  await page.getByRole('alert').waitFor();
  await context.close();
});

test('an owner approves, then revokes, support access in the workspace settings', async () => {
  const { execFileSync } = await import('node:child_process');
  const bin = process.env.MESHWORK_BIN ?? `${harness.repo}/target/debug/meshwork`;
  const context = await browser.newContext();
  const page = await context.newPage();
  await signUpAndIn(page, 'owner@support.test');
  await page.getByLabel('Workspace name').fill('Supported Ltd');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.getByRole('heading', { name: 'Supported Ltd' }).waitFor();
  const ws = new URL(page.url()).pathname.split('/')[2];
  // The operator asks, from the command line beside the running server.
  const grant = execFileSync(bin, ['support', 'request', '--data-dir', server.dir, '--workspace', ws, '--operator', 'Sam (support)', '--reason', 'Ticket 4411: an import fails', '--minutes', '30'], { env: { PATH: process.env.PATH, MESHWORK_BACKUP__ENABLED: 'false' } }).toString().trim();
  const read = () => {
    try {
      return execFileSync(bin, ['support', 'read', '--data-dir', server.dir, '--grant', grant, '--type', 'contact'], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    } catch (e) {
      return `refused: ${e.stderr}`;
    }
  };
  assert.match(read(), /refused: .*not approved/);
  await page.goto(`${server.url}/w/${ws}/settings`);
  const section = page.getByRole('region', { name: 'Support access' });
  await section.getByText('Ticket 4411: an import fails').waitFor();
  for (const look of LOOKS) {
    const view = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport, storageState: await context.storageState() });
    const p = await view.newPage();
    await p.goto(`${server.url}/w/${ws}/settings`);
    await p.getByRole('heading', { name: 'Support access' }).scrollIntoViewIfNeeded();
    assert.deepEqual(await axeViolations(p), [], `support access (${look.name})`);
    await screenshot(p, 'workspace-support-access', look.name);
    await view.close();
  }
  await section.getByRole('button', { name: 'Approve support access for Sam (support)' }).click();
  await page.getByRole('status').filter({ hasText: 'Support access is approved' }).waitFor();
  assert.doesNotMatch(read(), /refused/);
  await page.getByRole('region', { name: 'Support access' }).getByRole('button', { name: 'Revoke support access for Sam (support)' }).click();
  await page.getByRole('status').filter({ hasText: 'Support access is revoked' }).waitFor();
  assert.match(read(), /refused: .*revoked/);
  // The audit log on the same page shows the reads.
  await page.getByText('support read').first().waitFor();
  // Third-party processing: on by default, off with the checkbox.
  const analytics = page.getByLabel(/Count this workspace's use/);
  assert.equal(await analytics.isChecked(), true);
  await analytics.uncheck();
  await page.getByRole('region', { name: 'Third-party processing' }).getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'Third-party processing is saved.' }).waitFor();
  assert.equal(await page.getByLabel(/Count this workspace's use/).isChecked(), false);
  await context.close();
});

test('restricting, then erasing, a contact at their request from its page', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signUpAndIn(page, 'dpo@rights.test');
  await page.getByLabel('Workspace name').fill('Rights Ltd');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.getByRole('heading', { name: 'Rights Ltd' }).waitFor();
  const ws = new URL(page.url()).pathname.split('/')[2];
  await page.goto(`${server.url}/w/${ws}/contacts`);
  await page.getByText('New contact', { exact: true }).click();
  await page.getByLabel('First name').fill('Erin');
  await page.getByLabel('Last name').fill('Erasable');
  await page.getByLabel('Email addresses').fill('erin@rights.test');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Erin Erasable' }).waitFor();
  const contact = page.url();
  const rights = () => page.getByRole('region', { name: "This person's rights" });
  await rights().getByLabel('Your password').first().fill(PASSWORD);
  await rights().getByRole('button', { name: 'Restrict processing' }).click();
  await page.getByText('Processing restricted').waitFor();
  for (const look of LOOKS) {
    const view = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport, storageState: await context.storageState() });
    const p = await view.newPage();
    await p.goto(contact);
    await p.getByRole('heading', { name: "This person's rights" }).scrollIntoViewIfNeeded();
    assert.deepEqual(await axeViolations(p), [], `contact rights (${look.name})`);
    await screenshot(p, 'contact-rights', look.name);
    await view.close();
  }
  // A wrong password is named and nothing happens.
  await rights().locator('#erase-password').fill('not my password');
  await rights().getByLabel(/Yes, erase Erin Erasable everywhere/).check();
  await rights().getByRole('button', { name: 'Erase this person' }).click();
  await page.locator('#rights-error').waitFor();
  await page.getByRole('heading', { name: 'Erin Erasable' }).waitFor();
  await rights().locator('#erase-password').fill(PASSWORD);
  await rights().getByLabel(/Yes, erase Erin Erasable everywhere/).check();
  await rights().getByRole('button', { name: 'Erase this person' }).click();
  await page.getByRole('heading', { name: /^Contacts/ }).waitFor();
  await page.getByText('No contacts yet').waitFor();
  // The same email cannot be added again.
  await page.getByText('New contact', { exact: true }).click();
  await page.getByLabel('First name').fill('Erin');
  await page.getByLabel('Email addresses').fill('erin@rights.test');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('alert').filter({ hasText: 'erased' }).waitFor();
  await context.close();
});
