// Accounts in the browser: sign-up to a first workspace, sign-in errors, sign-out, and every
// account page free of WCAG A/AA violations in light, dark and phone looks (with screenshots).
// Controls are found by their labels and roles, as a person finds them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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

const signUp = (page, name, email) => harness.signUp(page, server, name, email);
const signIn = (page, email, password) => harness.signIn(page, server, email, password);

test('a person signs up, signs in, creates a workspace and signs out, by keyboard too', async () => {
  const page = await browser.newPage();
  // Anyone not signed in who opens Meshwork lands on the sign-in page.
  await page.goto(`${server.url}/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByRole('heading', { name: 'Create your account' }).waitFor();
  await signUp(page, 'Ada Lovelace', 'ada@browser.test');
  await page.getByRole('link', { name: 'Sign in' }).click();
  // By keyboard alone: type, Tab to the next field, Enter to send.
  await page.getByLabel('Email').focus();
  await page.keyboard.type('ada@browser.test');
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();
  await page.getByText('No workspace yet').waitFor();
  await page.getByLabel('Workspace name').fill('Analytical Engines');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  // The new workspace opens; the list has it.
  await page.getByRole('heading', { name: 'Analytical Engines' }).waitFor();
  await page.getByText('Your role: owner').waitFor();
  await page.getByText('Analytical Engines', { exact: true }).first().click();
  await page.getByRole('link', { name: 'Your workspaces' }).click();
  await page.getByRole('link', { name: 'Analytical Engines' }).click();
  await page.getByRole('heading', { name: 'Analytical Engines' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  // Signed out: the home page sends back to sign-in.
  await page.goto(`${server.url}/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.close();
});

test('a wrong password is said beside the form and the email is kept', async () => {
  const page = await browser.newPage();
  await signUp(page, 'Bea Wrong', 'bea@browser.test');
  await signIn(page, 'bea@browser.test', 'not the password at all');
  await page.getByRole('alert').filter({ hasText: 'The email or password is wrong' }).waitFor();
  assert.equal(await page.getByLabel('Email').inputValue(), 'bea@browser.test');
  assert.equal(await page.getByLabel('Password').inputValue(), '');
  await page.close();
});

test('a typed password can be shown to check it, and is masked again when sent', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/sign-in`);
  const field = page.getByLabel('Password');
  await page.getByLabel('Email').fill('nobody@browser.test');
  await field.fill('correct horse battery');
  const show = page.getByRole('button', { name: 'Show password' });
  const hide = page.getByRole('button', { name: 'Hide password' });
  assert.equal(await field.getAttribute('type'), 'password');
  await show.click();
  assert.equal(await field.getAttribute('type'), 'text');
  assert.equal(await field.inputValue(), 'correct horse battery');
  await screenshot(page, 'password-shown', 'light');
  await hide.click();
  assert.equal(await field.getAttribute('type'), 'password');
  // Shown when sent: the field is masked before the form goes (what the browser may remember of
  // a text field it never sees), seen by a listener that keeps the form from leaving.
  await page.evaluate(() =>
    document.querySelector('form').addEventListener('submit', (e) => {
      e.preventDefault();
      document.body.dataset.sentAs = document.getElementById('password').type;
    }),
  );
  await show.click();
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.equal(await page.evaluate(() => document.body.dataset.sentAs), 'password');
  await show.waitFor();
  await page.close();
});

test('a new password has a strength meter that reads its length as the server does', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/sign-up`);
  const field = page.getByLabel('Password', { exact: true });
  const said = page.locator('#password-strength');
  await field.fill('short');
  await said.filter({ hasText: 'Too short: 5 of at least 12 characters.' }).waitFor();
  // Runs of spaces count as one, as on the server.
  await field.fill('abcde        xy');
  await said.filter({ hasText: 'Too short: 8 of at least 12' }).waitFor();
  await field.fill('monkey wrench');
  await said.filter({ hasText: 'Fair (13 characters)' }).waitFor();
  await field.fill('correct horse battery staple');
  await said.filter({ hasText: 'Strong (28 characters).' }).waitFor();
  // Screen readers hear it with the field.
  assert.match(await field.getAttribute('aria-describedby'), /password-strength/);
  assert.equal(await page.locator('meter.strength').getAttribute('value'), '3');
  await screenshot(page, 'password-strength', 'light');
  await page.close();
});

test('a weak password is named beside its field, the other entries kept', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/sign-up`);
  await page.getByLabel('Your name').fill('Cy Weak');
  await page.getByLabel('Email').fill('cy@browser.test');
  await page.getByLabel('Password').fill('short');
  await page.getByLabel('I am 16 or over').check();
  // The browser's own check would stop a short password; the server's message is what counts.
  await page.getByLabel('Password').evaluate((el) => el.removeAttribute('minlength'));
  await page.getByRole('button', { name: 'Create account' }).click();
  const error = page.locator('#password-error');
  await error.waitFor();
  assert.match(await error.innerText(), /characters/);
  assert.equal(await page.getByLabel('Your name').inputValue(), 'Cy Weak');
  assert.equal(await page.getByLabel('Email').inputValue(), 'cy@browser.test');
  await page.close();
});

test('every account page passes axe (WCAG 2.x A and AA) in light, dark and at phone width', async () => {
  const pages = [
    ['sign-in', '/sign-in'],
    ['sign-up', '/sign-up'],
    ['forgot-password', '/forgot-password'],
  ];
  for (const look of LOOKS) {
    const context = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport });
    const page = await context.newPage();
    for (const [name, path] of pages) {
      await page.goto(`${server.url}${path}`);
      assert.deepEqual(await axeViolations(page), [], `${name} (${look.name})`);
      await screenshot(page, name, look.name);
    }
    // The signed-in pages.
    await signIn(page, 'ada@browser.test');
    await page.getByRole('heading', { name: 'Your workspaces' }).waitFor();
    assert.deepEqual(await axeViolations(page), [], `home (${look.name})`);
    await screenshot(page, 'home', look.name);
    await page.getByRole('link', { name: 'Analytical Engines' }).click();
    await page.getByRole('heading', { name: 'Analytical Engines' }).waitFor();
    assert.deepEqual(await axeViolations(page), [], `workspace (${look.name})`);
    await screenshot(page, 'workspace', look.name);
    await context.close();
  }
});
