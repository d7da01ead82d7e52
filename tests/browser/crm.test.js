// The CRM in the browser: sign-up to a first contact, search-as-you-type opening a record by
// keyboard alone, editing a record in place with the change on its timeline, a note from the
// composer, and a deal dragged to another stage with the column totals following (and moved by
// keyboard too). Every CRM page passes axe in light, dark and phone looks, with screenshots.
import { test, before, after } from 'node:test';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import * as harness from './harness.js';
import { startServer, launch, axeViolations, LOOKS, screenshot } from './harness.js';

let server;
let browser;
let page;

before(async () => {
  server = await startServer({}, { smtp: true });
  browser = await launch();
  page = await browser.newPage();
  page.setDefaultTimeout(10_000);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A link of the workspace's navigation. */
const nav = (name) => page.getByRole('navigation', { name: 'Compilers Ltd' }).getByRole('link', { name });

/** The column of the board headed `stage`. */
const column = (stage) => page.locator('section.column').filter({ has: page.getByRole('heading', { name: stage }) });

test('sign-up to a first contact', async () => {
  await harness.signUp(page, server, 'Grace Hopper', 'grace@crm.test');
  await harness.signIn(page, server, 'grace@crm.test');
  await page.getByLabel('Workspace name').fill('Compilers Ltd');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.getByRole('heading', { name: 'Compilers Ltd' }).waitFor();
  await nav('Contacts').click();
  await page.getByRole('heading', { name: /^Contacts/ }).waitFor();
  await page.getByText('No contacts yet').waitFor();
  await page.getByText('New contact', { exact: true }).click();
  await page.getByLabel('First name').fill('Ada');
  await page.getByLabel('Last name').fill('Lovelace');
  await page.getByLabel('Email addresses').fill('ada@engines.test');
  await page.getByLabel('Title', { exact: true }).fill('Analyst');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await nav('Contacts').click();
  const row = page.getByRole('row', { name: /Ada Lovelace/ });
  await row.waitFor();
  assert.match(await row.innerText(), /ada@engines\.test/);
});

test('a field the server refuses is named beside it, with what was typed kept', async () => {
  await page.getByText('New contact', { exact: true }).click();
  await page.getByLabel('First name').fill('Bad');
  await page.getByLabel('Email addresses').fill('not an address');
  await page.getByRole('button', { name: 'Create contact' }).click();
  const error = page.locator('#f-emails-error');
  await error.waitFor();
  assert.match(await error.innerText(), /email/i);
  assert.equal(await page.getByLabel('First name').inputValue(), 'Bad');
  assert.equal(await page.getByLabel('Email addresses').inputValue(), 'not an address');
});

test('search as you type opens a record by keyboard alone', async () => {
  await page.keyboard.press('Escape');
  await page.locator('body').click({ position: { x: 5, y: 300 } });
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'global-search');
  await page.keyboard.type('lovel');
  const option = page.getByRole('option', { name: /Ada Lovelace/ });
  await option.waitFor();
  await page.keyboard.press('ArrowDown');
  assert.equal(await option.getAttribute('aria-selected'), 'true');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  assert.match(page.url(), /\/contacts\//);
});

test('a record is edited in place and the change shows on its timeline; a note is added', async () => {
  await page.getByLabel('Title', { exact: true }).fill('Chief Analyst');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByText('Title: “Analyst” → “Chief Analyst”').waitFor();
  assert.equal(await page.getByLabel('Title', { exact: true }).inputValue(), 'Chief Analyst');
  await page.getByLabel('Note', { exact: true }).fill('Met at the Difference Engine demo.');
  await page.getByRole('button', { name: 'Add note' }).click();
  await page.locator('.timeline').getByText('Met at the Difference Engine demo.').waitFor();
});

test('a cell of a list is edited in place, by pointer and by keyboard; Escape leaves it as it was', async () => {
  await nav('Contacts').click();
  const row = page.getByRole('row', { name: /Ada Lovelace/ });
  /** Waits until the open cell's input has the focus (the form is then wired up). */
  const focused = (label) =>
    page.waitForFunction((label) => document.activeElement?.labels?.[0]?.textContent === label, label);
  await row.getByRole('link', { name: 'Edit Title of Ada Lovelace: Chief Analyst' }).click();
  await focused('Title of Ada Lovelace');
  const input = page.getByLabel('Title of Ada Lovelace');
  assert.equal(await input.inputValue(), 'Chief Analyst');
  await input.fill('Head of Analysis');
  await input.press('Enter');
  const edited = row.getByRole('link', { name: 'Edit Title of Ada Lovelace: Head of Analysis' });
  await edited.waitFor();
  // Focus is back on the cell, so the keyboard goes on from where it was.
  assert.ok(await edited.evaluate((el) => el === document.activeElement));
  await page.keyboard.press('Enter');
  await focused('Title of Ada Lovelace');
  await page.getByLabel('Title of Ada Lovelace').fill('Not kept');
  await page.keyboard.press('Escape');
  await edited.waitFor();
  assert.ok(await edited.evaluate((el) => el === document.activeElement));
  // A value the server refuses is named in the cell, with what was typed kept.
  await row.getByRole('link', { name: /^Edit Email of Ada Lovelace/ }).click();
  await focused('Email of Ada Lovelace');
  await page.getByLabel('Email of Ada Lovelace').fill('not an address');
  await page.getByLabel('Email of Ada Lovelace').press('Enter');
  await row.getByRole('alert').waitFor();
  assert.equal(await page.getByLabel('Email of Ada Lovelace').inputValue(), 'not an address');
  await row.getByRole('button', { name: 'Cancel' }).click();
  await row.getByRole('link', { name: 'Edit Email of Ada Lovelace: ada@engines.test' }).waitFor();
  // Saved for real: the record's page shows it, and its timeline has the change.
  await row.getByRole('link', { name: 'Ada Lovelace', exact: true }).click();
  assert.equal(await page.getByLabel('Title', { exact: true }).inputValue(), 'Head of Analysis');
  await page.getByText('Title: “Chief Analyst” → “Head of Analysis”').waitFor();
});

test('files are attached to a record by choosing or dropping them, and one too large is named', async () => {
  // On Ada's page, from the test before.
  const files = page.getByRole('region', { name: 'Files' });
  await files.getByText('No files yet.').waitFor();
  await page.getByLabel('Attach a file').setInputFiles({
    name: 'engine notes.txt',
    mimeType: 'text/plain',
    buffer: Buffer.from('The engine weaves algebraic patterns.'),
  });
  await files.getByRole('button', { name: 'Upload' }).click();
  await files.getByRole('link', { name: 'engine notes.txt' }).waitFor();
  assert.match(await files.innerText(), /37 bytes/);
  // Dropped on the form: sent at once, with its progress shown.
  const drop = async (name, size) => {
    const data = await page.evaluateHandle(
      ([name, size]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(size).fill(65)], name, { type: 'application/octet-stream' }));
        return dt;
      },
      [name, size],
    );
    await page.locator('#files .dropzone').dispatchEvent('dragover', { dataTransfer: data });
    await page.locator('#files .dropzone').dispatchEvent('drop', { dataTransfer: data });
  };
  await drop('punched cards.bin', 300_000);
  await files.getByRole('link', { name: 'punched cards.bin' }).waitFor();
  // Over 25 MiB: named, and nothing sent.
  await drop('whole archive.zip', 26 * 1024 * 1024);
  await files.getByRole('status').filter({ hasText: 'whole archive.zip is 26.0 MiB; a file is at most 25.0 MiB' }).waitFor();
  // The file downloads as it was uploaded.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    files.getByRole('link', { name: 'engine notes.txt' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'engine notes.txt');
  assert.equal(await readFile(await download.path(), 'utf8'), 'The engine weaves algebraic patterns.');
});

test('the search and sort of a list are saved as a view, shared, opened again and deleted', async () => {
  await nav('Contacts').click();
  await page.getByLabel('Find').fill('lovelace');
  await page.getByLabel('Sort').selectOption('-updated');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText('Save this view').click();
  await page.getByLabel('View name').fill('Lovelaces, recent first');
  await page.getByLabel('Share it with everyone in the workspace').check();
  await page.getByRole('button', { name: 'Save view' }).click();
  const views = page.getByRole('navigation', { name: 'Views of Contacts' });
  const saved = views.getByRole('link', { name: 'Lovelaces, recent first' });
  assert.equal(await saved.getAttribute('aria-current'), 'page');
  await views.getByRole('link', { name: 'All contacts' }).click();
  assert.equal(await page.getByLabel('Find').inputValue(), '');
  await saved.click();
  assert.equal(await page.getByLabel('Find').inputValue(), 'lovelace');
  assert.equal(await page.getByLabel('Sort').inputValue(), '-updated');
  await page.getByRole('row', { name: /Ada Lovelace/ }).waitFor();
  await views.getByRole('button', { name: 'Delete the view Lovelaces, recent first' }).click();
  await views.getByRole('link', { name: 'All contacts' }).waitFor();
  assert.equal(await saved.count(), 0);
  // One kept for this person alone, for the pages after.
  await page.getByLabel('Sort').selectOption('-created');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText('Save this view').click();
  await page.getByLabel('View name').fill('Newest first');
  await page.getByRole('button', { name: 'Save view' }).click();
  await views.getByRole('link', { name: 'Newest first' }).waitFor();
});

test('a duplicate is found, previewed and merged into a record', async () => {
  await nav('Contacts').click();
  await page.getByText('New contact', { exact: true }).click();
  await page.getByLabel('First name').fill('Ada');
  await page.getByLabel('Last name').fill('King');
  await page.getByLabel('Email addresses').fill('countess@engines.test');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Ada King' }).waitFor();
  await nav('Contacts').click();
  await page.getByRole('link', { name: 'Ada Lovelace', exact: true }).click();
  await page.getByRole('link', { name: 'Merge a duplicate into this contact' }).click();
  await page.getByLabel('Name, email or other words').fill('ada');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('link', { name: 'Ada King' }).click();
  const preview = page.getByRole('table', { name: 'Each field before and after the merge' });
  const emails = preview.getByRole('row', { name: /Email addresses/ });
  assert.match(await emails.innerText(), /ada@engines\.test, countess@engines\.test/);
  await page.getByText('Nothing has changed yet.').waitFor();
  assert.deepEqual(await axeViolations(page), [], 'the preview of a merge');
  await screenshot(page, 'merge-preview', 'light');
  await page.getByRole('button', { name: 'Merge Ada King into Ada Lovelace' }).click();
  await page.locator('.timeline').getByText('Merged with a duplicate').waitFor();
  assert.equal(await page.getByLabel('Email addresses').inputValue(), 'ada@engines.test, countess@engines.test');
  await nav('Contacts').click();
  assert.equal(await page.getByRole('link', { name: 'Ada King', exact: true }).count(), 0);
});

test('a deal dragged to another stage moves, and the totals follow; by keyboard too', async () => {
  await nav('Board').click();
  await page.getByText('No pipeline yet').waitFor();
  await page.getByRole('button', { name: 'Create pipeline' }).click();
  await column('Lead').waitFor();
  await nav('Deals').click();
  for (const [name, amount] of [
    ['Compiler licence', '12500'],
    ['Support plan', '3000'],
  ]) {
    await page.getByText('New deal', { exact: true }).click();
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Amount').fill(amount);
    await page.getByLabel('Currency').fill('EUR');
    await page.getByRole('button', { name: 'Create deal' }).click();
    await page.getByRole('heading', { name }).waitFor();
    await nav('Deals').click();
  }
  await nav('Board').click();
  assert.match(await column('Lead').locator('.totals').innerText(), /€15,500\.00/);
  // Drag and drop.
  await column('Lead').locator('.deal-card', { hasText: 'Compiler licence' }).dragTo(column('Qualified'), { sourcePosition: { x: 4, y: 4 } });
  await column('Qualified').locator('.deal-card', { hasText: 'Compiler licence' }).waitFor();
  assert.match(await column('Lead').locator('.totals').innerText(), /€3,000\.00/);
  assert.match(await column('Qualified').locator('.totals').innerText(), /€12,500\.00/);
  assert.match(await column('Qualified').getByRole('heading').innerText(), /1$/);
  // The keyboard way: the card's "Move to" choice.
  await page.getByLabel('Move to').first().focus();
  const support = column('Lead').locator('.deal-card', { hasText: 'Support plan' });
  await support.getByLabel('Move to').selectOption({ label: 'Proposal' });
  await support.getByRole('button', { name: 'Move' }).press('Enter');
  await column('Proposal').locator('.deal-card', { hasText: 'Support plan' }).waitFor();
  assert.match(await column('Lead').locator('.totals').innerText(), /No amount/);
});

test('a stage is renamed and an empty one removed in the pipeline settings; the board follows', async () => {
  await nav('Board').click();
  await page.getByRole('link', { name: 'Edit pipelines and stages' }).click();
  await page.getByRole('heading', { name: 'Pipelines', level: 1 }).waitFor();
  await page.getByLabel('Name of the stage Qualified').fill('Qualified lead');
  await page.getByRole('button', { name: /^Save / }).click();
  await page.getByLabel('Name of the stage Qualified lead').waitFor();
  // Proposal holds a deal: refused, with the count.
  await page.getByLabel('Remove Proposal').check();
  await page.getByRole('button', { name: /^Save / }).click();
  await page.getByRole('alert').filter({ hasText: '1 deal is in the stage “Proposal”' }).waitFor();
  await nav('Board').click();
  await column('Qualified lead').locator('.deal-card', { hasText: 'Compiler licence' }).waitFor();
  await column('Proposal').locator('.deal-card', { hasText: 'Support plan' }).waitFor();
});

test('several records change at once, after a review with their count; the list downloads as CSV', async () => {
  await nav('Deals').click();
  await page.getByLabel('Select Compiler licence').check();
  await page.getByLabel('Select Support plan').check();
  await page.getByLabel('Action').selectOption('tags');
  await page.getByRole('button', { name: 'Review' }).click();
  await page.getByRole('heading', { name: 'Change 2 deals' }).waitFor();
  await page.getByLabel('Tags').fill('q4, priority');
  await page.getByRole('button', { name: 'Apply to 2 deals' }).click();
  await page.getByRole('status').filter({ hasText: 'Changed 2 deals.' }).waitFor();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download this list as CSV' }).click(),
  ]);
  const csv = await readFile(await download.path(), 'utf8');
  assert.match(csv, /^Name,Amount,Stage,Close date,Tags/);
  assert.match(csv, /Compiler licence,"€12,500\.00",Qualified lead,,"q4, priority"/);
  // Every deal the view matches: a search narrows it to one, deleted after a confirmation.
  await page.getByLabel('Find').fill('support');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByLabel('Which').selectOption('all');
  await page.getByLabel('Action').selectOption('delete');
  await page.getByRole('button', { name: 'Review' }).click();
  await page.getByRole('heading', { name: 'Delete 1 deal?' }).waitFor();
  await page.getByLabel('Yes, delete this deal').check();
  await page.getByRole('button', { name: 'Delete 1 deal' }).click();
  await page.getByRole('status').filter({ hasText: 'Deleted 1 deal.' }).waitFor();
  await nav('Deals').click();
  await page.getByRole('row', { name: /Compiler licence/ }).waitFor();
  assert.equal(await page.getByRole('row', { name: /Support plan/ }).count(), 0);
});

test('a CSV with a bad row: previewed, imported with the row reported, then reverted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'meshwork-import-'));
  const file = join(dir, 'people.csv');
  await writeFile(
    file,
    'First Name,Last Name,Email,Job Title,Favourite colour\n' +
      'Alan,Turing,alan@bletchley.test,Cryptanalyst,green\n' +
      'Bad,Row,not-an-email,Nobody,red\n' +
      '"Joan\nElisabeth",Clarke,joan@bletchley.test,Cryptanalyst,blue\n',
  );
  await nav('Contacts').click();
  await page.getByRole('link', { name: 'Import a file' }).click();
  await page.getByRole('heading', { name: 'Import a file' }).waitFor();
  assert.equal(await page.getByLabel('The file holds').inputValue(), 'contact');
  await page.getByLabel('File', { exact: true }).setInputFiles(file);
  await page.getByRole('button', { name: 'Upload and preview' }).click();
  await page.getByRole('heading', { name: 'Import people.csv' }).waitFor();
  await page.getByText('hubspot', { exact: true }).waitFor();
  await page.getByText('UTF-8', { exact: true }).waitFor();
  await page.getByRole('cell', { name: 'alan@bletchley.test' }).waitFor();
  // The suggested mapping, changed: the column nothing read fills the tags.
  assert.equal(await page.getByLabel('Email', { exact: true }).inputValue(), 'email');
  const colour = page.getByLabel('Favourite colour');
  assert.equal(await colour.inputValue(), '');
  await colour.selectOption({ label: 'Tags' });
  assert.deepEqual(await axeViolations(page), [], 'the import preview');
  await screenshot(page, 'import-preview', 'light');
  assert.equal(await page.getByLabel('Records already here').inputValue(), 'upsert');
  await page.getByRole('button', { name: 'Start import' }).click();
  // The status follows the job until it is done.
  await page.getByText('Done: 3 rows read.').waitFor();
  const counts = await page.locator('.counts').innerText();
  assert.match(counts, /Created\s*2/);
  assert.match(counts, /Rejected\s*1/);
  const rejected = page.getByRole('table', { name: 'Rejected rows' }).getByRole('row').nth(1);
  assert.match(await rejected.innerText(), /^2\s+3\s+Email\s+.*email/i);
  await page.getByText('1 cells held line breaks').waitFor();
  // The rejected rows download with their cells as the file had them, and why.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /rejected rows/i }).click(),
  ]);
  const rejectedCsv = await readFile(await download.path(), 'utf8');
  assert.match(rejectedCsv, /^\uFEFF?First Name,Last Name,Email,Job Title,Favourite colour,_row,_column,_reason\r?\n/);
  assert.match(rejectedCsv, /\nBad,Row,not-an-email,Nobody,red,2,Email,/);
  await nav('Contacts').click();
  await page.getByRole('link', { name: 'Joan Elisabeth Clarke', exact: true }).waitFor();
  assert.match(await page.getByRole('row', { name: /Alan Turing/ }).innerText(), /green/);
  await page.goBack();
  await page.getByRole('button', { name: 'Revert this import' }).click();
  await page.getByRole('status').filter({ hasText: 'The import is reverted' }).waitFor();
  await nav('Contacts').click();
  await page.getByRole('link', { name: 'Ada Lovelace', exact: true }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Alan Turing', exact: true }).count(), 0);
});

test('an owner invites a viewer and creates an API key, shown once', async () => {
  await nav('Settings').click();
  await page.getByRole('heading', { name: 'Settings of Compilers Ltd' }).waitFor();
  await page.getByLabel('Their email').fill('viewer@crm.test');
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByRole('button', { name: 'Send invitation' }).click();
  await page.getByRole('status').filter({ hasText: 'The invitation is on its way' }).waitFor();
  await page.getByLabel('Key name').fill('Reporting');
  await page.getByLabel('Your password', { exact: true }).fill(harness.PASSWORD);
  await page.getByRole('button', { name: 'Create API key' }).click();
  const secret = await page.getByLabel('Secret').inputValue();
  assert.ok(secret.length > 20);
  // The key works against the API, as a viewer: it reads and may not write.
  const ws = new URL(page.url()).pathname.split('/')[2];
  const headers = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
  const read = await fetch(`${server.url}/api/v1/workspaces/${ws}/contacts`, { headers });
  assert.equal(read.status, 200);
  const write = await fetch(`${server.url}/api/v1/workspaces/${ws}/contacts`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ first_name: 'No' }),
  });
  assert.equal(write.status, 403);
  // Shown once: the page after it lists the key by its prefix only.
  await page.goto(`${server.url}/w/${ws}/settings`);
  assert.equal(await page.getByLabel('Secret').count(), 0);
  await page.getByRole('button', { name: 'Revoke Reporting' }).waitFor();
});

test('the invited viewer joins by the link in the mail and sees no edit controls; the API refuses them too', async () => {
  const ws = new URL(page.url()).pathname.split('/')[2];
  const invitation = await server.mailTo('viewer@crm.test', /invites\/accept/);
  const accept = invitation.match(/http:\/\/localhost:\d+\/invites\/accept\?token=[\w-]+/)[0];
  // The viewer, in a browser of their own: sign up, confirm the address, accept.
  const context = await browser.newContext();
  const viewer = await context.newPage();
  viewer.setDefaultTimeout(10_000);
  await harness.signUp(viewer, server, 'Vera Viewer', 'viewer@crm.test');
  const welcome = await server.mailTo('viewer@crm.test', /verify-email/);
  await viewer.goto(welcome.match(/http:\/\/localhost:\d+\/verify-email\?token=[\w-]+/)[0]);
  await viewer.getByRole('button', { name: 'Confirm my email address' }).click();
  await viewer.getByRole('heading', { name: 'Your email address is confirmed' }).waitFor();
  await harness.signIn(viewer, server, 'viewer@crm.test');
  await viewer.goto(accept);
  await viewer.getByRole('button', { name: 'Accept the invitation' }).click();
  await viewer.getByRole('heading', { name: 'You joined the workspace' }).waitFor();
  await viewer.getByText('Your role there: viewer.').waitFor();
  // Reading: everything; changing: no control anywhere.
  await viewer.goto(`${server.url}/w/${ws}/contacts`);
  const row = viewer.getByRole('row', { name: /Ada Lovelace/ });
  await row.waitFor();
  assert.match(await row.innerText(), /Head of Analysis/);
  assert.equal(await viewer.getByText('New contact', { exact: true }).count(), 0);
  assert.equal(await viewer.locator('a.cell-link').count(), 0);
  assert.equal(await viewer.getByRole('checkbox').count(), 0);
  assert.equal(await viewer.getByRole('link', { name: 'Import a file' }).count(), 0);
  await row.getByRole('link', { name: 'Ada Lovelace', exact: true }).click();
  await viewer.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  assert.equal(await viewer.getByRole('button', { name: 'Save changes' }).count(), 0);
  assert.equal(await viewer.getByRole('button', { name: 'Add note' }).count(), 0);
  assert.equal(await viewer.getByRole('button', { name: 'Delete this contact' }).count(), 0);
  await viewer.goto(`${server.url}/w/${ws}/board`);
  await viewer.locator('section.column').first().waitFor();
  assert.equal(await viewer.locator('form.move').count(), 0);
  assert.equal(await viewer.locator('[draggable=true]').count(), 0);
  // The API, with the viewer's own session, refuses a write.
  const status = await viewer.evaluate(async (ws) => {
    const csrf = document.querySelector('input[name=csrf_token]').value;
    const r = await fetch(`/api/v1/workspaces/${ws}/contacts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ first_name: 'Not allowed' }),
    });
    return r.status;
  }, ws);
  assert.equal(status, 403);
  await context.close();
});

test('two workspaces become partners, share a population and see the matrix', async () => {
  const compilers = new URL(page.url()).pathname.split('/')[2];
  // A second workspace with a contact the first also has.
  await page.goto(`${server.url}/`);
  await page.getByLabel('Workspace name').fill('Engines Inc');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.getByRole('heading', { name: 'Engines Inc' }).waitFor();
  const engines = new URL(page.url()).pathname.split('/')[2];
  await page.goto(`${server.url}/w/${engines}/contacts`);
  await page.getByText('New contact', { exact: true }).click();
  await page.getByLabel('First name').fill('Augusta');
  await page.getByLabel('Email addresses').fill('ADA@engines.test');
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: 'Augusta' }).waitFor();
  // Each side names its population of contacts.
  for (const ws of [compilers, engines]) {
    await page.goto(`${server.url}/w/${ws}/partners`);
    await page.getByLabel('Name', { exact: true }).fill('All contacts');
    await page.getByLabel('Records matching').fill('type:contact');
    await page.getByRole('button', { name: 'Create population' }).click();
    await page.getByText('records matching type:contact').waitFor();
  }
  // Engines also loads a match-only list from another CRM's export: kept as keyed hashes.
  const listDir = await mkdtemp(join(tmpdir(), 'meshwork-list-'));
  const listFile = join(listDir, 'prospects.csv');
  await writeFile(listFile, 'First Name,Email,Phone Number\nAda,ada@engines.test,\nBabbage,charles@engines.test,\nNobody,,\n');
  await page.getByLabel('Name of the list').fill('Prospects');
  await page.getByLabel('It lists').selectOption('contacts');
  await page.getByLabel('CSV file').setInputFiles(listFile);
  await page.getByRole('button', { name: 'Load the list' }).click();
  await page.getByRole('status').filter({ hasText: 'Loaded “Prospects”: 2 entries from 3 rows, 1 without any email, phone or domain.' }).waitFor();
  await page.getByText('Row 3 (line 4)').waitFor();
  assert.deepEqual(await axeViolations(page), [], 'a match-only list loaded');
  // Compilers invites Engines; Engines accepts and shares its contacts with indicators.
  await page.goto(`${server.url}/w/${compilers}/partners`);
  await page.getByLabel("Your partner's workspace id").fill(engines);
  await page.getByRole('button', { name: 'Send the invitation' }).click();
  await page.getByText('waiting for them to accept').waitFor();
  await page.goto(`${server.url}/w/${engines}/partners`);
  await page.getByRole('button', { name: 'Accept the partnership with Compilers Ltd' }).click();
  await page.getByRole('heading', { name: 'Partnership with Compilers Ltd' }).waitFor();
  await page.getByLabel('All contacts').selectOption('indicators');
  await page.getByLabel('Counts below this read').fill('1');
  await page.getByRole('button', { name: 'Save what you share' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
  // Compilers shares its own, and sees the matrix and its overlapping record.
  await page.goto(`${server.url}/w/${compilers}/partners`);
  await page.getByRole('link', { name: 'Engines Inc', exact: true }).click();
  await page.getByLabel('All contacts').selectOption('counts');
  await page.getByRole('button', { name: 'Save what you share' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
  const matrix = page.getByRole('table', { name: /How many of your records/ });
  const row = matrix.getByRole('row', { name: /^All contacts/ });
  assert.match(await row.innerText(), /All contacts\s+1/);
  await page.getByRole('table', { name: 'Your overlapping records' }).getByRole('link', { name: 'Ada Lovelace', exact: true }).waitFor();
  // Engines, which Compilers shares only counts with, sees the count and no record.
  await page.goto(`${server.url}/w/${engines}/partners`);
  await page.getByRole('link', { name: 'Compilers Ltd', exact: true }).click();
  const theirs = page.getByRole('table', { name: /How many of your records/ }).getByRole('row', { name: /^All contacts/ });
  assert.match(await theirs.innerText(), /All contacts\s+(1|fewer than \d+)/);
  await page.getByText('None that your partner lets you see.').waitFor();
  // Ending it asks once more, saying what ending does; keeping it changes nothing.
  await page.goto(`${server.url}/w/${engines}/partners`);
  await page.getByRole('link', { name: 'End the partnership with Compilers Ltd' }).click();
  await page.getByRole('heading', { name: 'End the partnership with Compilers Ltd?' }).waitFor();
  assert.deepEqual(await axeViolations(page), [], 'ending a partnership');
  await page.getByRole('link', { name: 'Keep it' }).click();
  await page.getByText('None that your partner lets you see.').waitFor();
  await page.goto(`${server.url}/w/${compilers}/contacts`);
});

test('every CRM page passes axe (WCAG 2.x A and AA) in light, dark and at phone width', async () => {
  const base = new URL(page.url());
  const ws = base.pathname.split('/')[2];
  await page.goto(`${server.url}/w/${ws}/contacts`);
  const contact = await page.getByRole('link', { name: 'Ada Lovelace', exact: true }).getAttribute('href');
  const pages = [
    ['contacts', `/w/${ws}/contacts`],
    ['contact', contact],
    ['merge', `${contact}/merge?q=ada`],
    ['deals', `/w/${ws}/deals`],
    ['board', `/w/${ws}/board`],
    ['pipelines', `/w/${ws}/pipelines`],
    ['search', `/w/${ws}/search?q=ada`],
    ['workspace-settings', `/w/${ws}/settings`],
    ['import', `/w/${ws}/import`],
    ['partners', `/w/${ws}/partners`],
  ];
  for (const look of LOOKS) {
    const context = await browser.newContext({ colorScheme: look.colorScheme, viewport: look.viewport });
    const p = await context.newPage();
    await harness.signIn(p, server, 'grace@crm.test');
    await p.getByRole('heading', { name: 'Your workspaces' }).waitFor();
    for (const [name, path] of pages) {
      await p.goto(`${server.url}${path}`);
      assert.deepEqual(await axeViolations(p), [], `${name} (${look.name})`);
      await screenshot(p, name, look.name);
    }
    // The search box's list, open.
    await p.goto(`${server.url}/w/${ws}/contacts`);
    await p.getByRole('combobox', { name: /Search/ }).fill('ada');
    await p.getByRole('option', { name: /Ada Lovelace/ }).waitFor();
    assert.deepEqual(await axeViolations(p), [], `search box (${look.name})`);
    await screenshot(p, 'search-box', look.name);
    // A list's cell, open for editing.
    await p.keyboard.press('Escape');
    await p.getByRole('link', { name: /^Edit Title of Ada Lovelace/ }).click();
    await p.getByLabel('Title of Ada Lovelace').waitFor();
    assert.deepEqual(await axeViolations(p), [], `a cell being edited (${look.name})`);
    await screenshot(p, 'contacts-cell-edit', look.name);
    await context.close();
  }
});
