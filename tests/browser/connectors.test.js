// Connectors in the browser: an admin adds a folder connector from the workspace's settings,
// sees what it reads before connecting, tries the settings, adds it, and reads its first sync in
// the history; then a search finds the folder's file. Controls are found by their labels.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as harness from './harness.js';
import { startServer, launch, axeViolations, LOOKS, screenshot } from './harness.js';

let server;
let browser;
let page;
let folder;
let connectorPath;
let radicale;

before(async () => {
  // Radicale is on loopback, an internal address the operator must list.
  server = await startServer({ MESHWORK_CONNECTORS__FOLDER_ROOTS: tmpdir(), MESHWORK_CONNECTORS__PRIVATE_HOSTS: '127.0.0.1' });
  browser = await launch();
  page = await browser.newPage();
  folder = await mkdtemp(join(tmpdir(), 'meshwork-folder-'));
  // Readable by anyone on the machine (a new temp folder is its owner's alone).
  await chmod(folder, 0o755);
  await writeFile(join(folder, 'handbook.txt'), 'The pangolin handbook for new staff');
});

after(async () => {
  radicale?.kill();
  await browser?.close();
  await server?.stop();
});

test('an admin connects a folder: scopes first, settings tried, then the first sync in the history', async () => {
  await harness.signUp(page, server, 'Ida Admin', 'ida@connectors.test');
  await harness.signIn(page, server, 'ida@connectors.test');
  await page.getByLabel('Workspace name').fill('Shares Ltd');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.getByRole('heading', { name: 'Shares Ltd' }).waitFor();
  await page.getByRole('navigation', { name: 'Shares Ltd' }).getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('link', { name: 'Connectors', exact: true }).click();
  await page.getByRole('heading', { name: 'Connectors', level: 1 }).waitFor();
  // What each kind reads is shown before connecting.
  await page.getByText('Read each file’s and folder’s owner, group, mode and POSIX ACL').or(page.getByText("Read each file's and folder's owner, group, mode and POSIX ACL")).waitFor();
  await page.getByRole('link', { name: 'Connect Folder' }).click();
  await page.getByRole('heading', { name: /^Connect: Folder/ }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('shares');
  await page.getByLabel('Folder', { exact: true }).fill(join(folder, 'missing'));
  await page.getByRole('button', { name: 'Try these settings' }).click();
  await page.getByRole('alert').filter({ hasText: 'cannot read' }).waitFor();
  await page.getByLabel('Folder', { exact: true }).fill(folder);
  await page.getByRole('button', { name: 'Try these settings' }).click();
  await page.getByRole('status').filter({ hasText: 'It works: 1 files' }).waitFor();
  await page.getByRole('button', { name: 'Add connector' }).click();
  await page.getByRole('status').filter({ hasText: 'The connector is added' }).waitFor();
  connectorPath = new URL(page.url()).pathname;
  // The first sync ends; the history says what it did.
  for (let i = 0; i < 50; i++) {
    if (await page.getByText('1 documents: 1 read').count()) break;
    await page.waitForTimeout(200);
    await page.reload();
  }
  await page.getByText('1 documents: 1 read').waitFor();
  // Readable by anyone on the machine: found by everyone in the workspace.
  const ws = new URL(page.url()).pathname.split('/')[2];
  await page.goto(`${server.url}/w/${ws}/search?q=pangolin`);
  // A file has no web address: it is shown with its source, not as a link.
  await page.locator('li.hit', { hasText: 'handbook.txt' }).filter({ hasText: 'in shares' }).waitFor();
  await screenshot(page, 'search-documents', 'light');
});

test('a person pins a document found in search and writes a note only they see', async () => {
  const ws = connectorPath.split('/')[2];
  await page.goto(`${server.url}/w/${ws}/search?q=pangolin`);
  await page.getByRole('button', { name: 'Pin handbook.txt' }).click();
  await page.getByRole('status').filter({ hasText: 'Pinned' }).waitFor();
  const hit = page.locator('li.hit', { hasText: 'handbook.txt' });
  await hit.getByText('Pinned', { exact: true }).waitFor();
  await hit.getByText('Add a note').click();
  await page.getByLabel('Your note on handbook.txt (only you see it)').fill('Give this to every new starter');
  await page.getByRole('button', { name: 'Save note' }).click();
  await page.getByRole('status').filter({ hasText: 'Your note is saved' }).waitFor();
  await hit.getByText('Your note: Give this to every new starter').waitFor();
  for (const look of LOOKS) {
    const context = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport });
    const p = await context.newPage();
    await harness.signIn(p, server, 'ida@connectors.test');
    await p.getByRole('heading', { name: 'Your workspaces' }).waitFor();
    await p.goto(`${server.url}/w/${ws}/search?q=pangolin`);
    await p.getByText('Your note: Give this to every new starter').waitFor();
    assert.deepEqual(await axeViolations(p), [], `search-pinned (${look.name})`);
    await screenshot(p, 'search-pinned', look.name);
    await context.close();
  }
  await page.getByRole('button', { name: 'Unpin handbook.txt' }).click();
  await page.getByRole('status').filter({ hasText: 'Unpinned' }).waitFor();
  await page.getByRole('button', { name: 'Pin handbook.txt' }).waitFor();
});

test('the connectors pages in light, dark and phone width', async () => {
  const ws = connectorPath.split('/')[2];
  const id = connectorPath.split('/')[4];
  const pages = [
    ['connectors', `/w/${ws}/connectors`],
    ['connector-new', `/w/${ws}/connectors/new?kind=ldap`],
    ['connector-new-carddav', `/w/${ws}/connectors/new?kind=carddav`],
    ['connector-new-folder', `/w/${ws}/connectors/new?kind=folder`],
    ['connector', `/w/${ws}/connectors/${id}`],
  ];
  for (const look of LOOKS) {
    const context = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport });
    const p = await context.newPage();
    await harness.signIn(p, server, 'ida@connectors.test');
    await p.getByRole('heading', { name: 'Your workspaces' }).waitFor();
    for (const [name, path] of pages) {
      await p.goto(`${server.url}${path}`);
      assert.deepEqual(await axeViolations(p), [], `${name} (${look.name})`);
      await screenshot(p, name, look.name);
    }
    await context.close();
  }
});

/** A real Radicale CardDAV server with user alice (password alice-pw) and one card. */
async function startRadicale() {
  const dir = await mkdtemp(join(tmpdir(), 'meshwork-radicale-'));
  const port = await harness.freePort();
  await writeFile(join(dir, 'users'), 'alice:alice-pw\n');
  await writeFile(join(dir, 'config'), `[server]\nhosts = 127.0.0.1:${port}\n[auth]\ntype = htpasswd\nhtpasswd_filename = ${join(dir, 'users')}\nhtpasswd_encryption = plain\n[rights]\ntype = owner_only\n[storage]\nfilesystem_folder = ${join(dir, 'store')}\n`);
  radicale = spawn('radicale', ['-C', join(dir, 'config')], { stdio: 'ignore' });
  await harness.listening(port, 'radicale');
  const url = `http://127.0.0.1:${port}/`;
  const auth = { Authorization: 'Basic ' + Buffer.from('alice:alice-pw').toString('base64') };
  let r = await fetch(`${url}alice/contacts/`, { method: 'MKCOL', headers: { ...auth, 'Content-Type': 'application/xml' }, body: '<?xml version="1.0"?><mkcol xmlns="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><set><prop><resourcetype><collection/><CR:addressbook/></resourcetype></prop></set></mkcol>' });
  assert.equal(r.status, 201);
  r = await fetch(`${url}alice/contacts/quill.vcf`, { method: 'PUT', headers: { ...auth, 'Content-Type': 'text/vcard' }, body: 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:quill\r\nFN:Quinn Quill\r\nN:Quill;Quinn;;;\r\nEMAIL:quinn@cards.test\r\nTITLE:Buyer\r\nEND:VCARD\r\n' });
  assert.equal(r.status, 201);
  return url;
}

test('an admin connects an address book: its card becomes a contact', async () => {
  const url = await startRadicale();
  const ws = connectorPath.split('/')[2];
  await page.goto(`${server.url}/w/${ws}/connectors`);
  await page.getByText('Read the cards of those address books (PROPFIND and REPORT); nothing is ever written back').waitFor();
  await page.getByRole('link', { name: 'Connect CardDAV' }).click();
  await page.getByRole('heading', { name: /^Connect: CardDAV/ }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('cards');
  await page.getByLabel('Server URL').fill(url);
  await page.getByLabel('Login').fill('alice');
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Try these settings' }).click();
  await page.getByRole('alert').filter({ hasText: 'refused the credentials' }).waitFor();
  await page.getByLabel('Password').fill('alice-pw');
  await page.getByRole('button', { name: 'Try these settings' }).click();
  await page.getByRole('status').filter({ hasText: '1 card in 1 address book' }).waitFor();
  await screenshot(page, 'connector-carddav-tried', 'light');
  await page.getByLabel('Password').fill('alice-pw');
  await page.getByRole('button', { name: 'Add connector' }).click();
  await page.getByRole('status').filter({ hasText: 'The connector is added' }).waitFor();
  for (let i = 0; i < 50; i++) {
    if (await page.getByText('1 card: 1 written').count()) break;
    await page.waitForTimeout(200);
    await page.reload();
  }
  await page.getByText('1 card: 1 written').waitFor();
  await screenshot(page, 'connector-carddav', 'light');
  await page.goto(`${server.url}/w/${ws}/contacts`);
  await page.getByRole('link', { name: 'Quinn Quill', exact: true }).waitFor();
  await page.getByRole('link', { name: 'Edit Title of Quinn Quill:' }).filter({ hasText: 'Buyer' }).waitFor();
});
