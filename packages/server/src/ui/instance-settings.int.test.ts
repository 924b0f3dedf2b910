/**
 * Editing a connector instance's settings in the dashboard, in Debian's chromium against a started
 * hub on real Postgres: the form is the connector's settings schema, the save is `PUT
 * /v1/instances/{id}`, and what the API refuses is shown beside the field it points at, in the
 * API's own words. Secrets are never on the page. Its own file and timeouts: the browser is slow on
 * a loaded machine.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { useTestDatabase } from '@switchyard/testing';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findConnector } from '../connectors.ts';
import { ADMIN_TOKEN, call, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { launchChromium } from './browser.test-support.ts';
import { uiPlugin } from './plugin.ts';

const SHOTS = process.env.SWITCHYARD_SCREENSHOTS === '1';
const SHOT_DIR = fileURLToPath(new URL('../../../../docs/dashboard/', import.meta.url));

const database = useTestDatabase();
let hub: Hub;
let browser: Browser;
let page: Page;
let server: Awaited<ReturnType<typeof listen>>;

/** Docplanner's OAuth2 client secret and push key of the instance edited: never on the page. */
const CLIENT_SECRET = 'dp-client-secret-5f2a91c0';
const PUSH_KEY = 'dp-push-key-0b7e44d1';
const NEW_SECRET = 'dp-client-secret-rotated-77aa';

/** A Docplanner instance as an operator would create it through the API (docs/connectors/docplanner.md). */
const DP_SETTINGS = {
  domain: 'znanylekarz.pl',
  clientId: 'dp-client-1',
  clientSecret: CLIENT_SECRET,
  pushAuth: { apiKey: PUSH_KEY },
};

beforeAll(async () => {
  hub = await makeHub(database.url(), { connectors: [findConnector('docplanner')!] });
  await hub.start();
  server = await listen(hub, { plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })] });
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${server.base}/ui/`);
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 15_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await hub?.stop();
});

/** With `SWITCHYARD_SCREENSHOTS=1`, the screenshot of docs/dashboard.md named `name`. */
async function shot(name: string, on: Page, selector: string) {
  if (!SHOTS) return;
  mkdirSync(SHOT_DIR, { recursive: true });
  // The top bar stays on screen as the page scrolls: out of the way, it would cover the form's middle.
  await on.evaluate("document.querySelector('header.top').style.position = 'static'");
  await on
    .locator(selector)
    .first()
    .screenshot({ path: `${SHOT_DIR}${name}.png` });
}

/** Opens the instance's page and waits for its settings form. */
async function openForm(on: Page, id: string) {
  await on.goto(`${server.base}/ui/#/instances/${id}`);
  const form = on.getByRole('form', { name: 'Edit settings' });
  await form.waitFor({ timeout: 15_000 });
  return form;
}

/** The decrypted settings the hub stored (what the connector will be called with). */
async function stored(id: string) {
  const loaded = await hub.host.loadInstance(id, true);
  return loaded!.config as Record<string, unknown>;
}

it('edits an API-managed instance: the change is what the API then answers, and a secret left empty stays stored, never shown', async () => {
  await hub.instances.upsert({ id: 'dp-edit', connector: 'docplanner', settings: DP_SETTINGS });
  const form = await openForm(page, 'dp-edit');
  // The secret fields are empty, saying a value is stored; the value is nowhere in the page.
  expect(await form.getByLabel('clientSecret').inputValue()).toBe('');
  expect(await form.getByLabel('clientSecret').getAttribute('placeholder')).toContain('stored');
  await form.getByLabel('pullMode').selectOption('multiple');
  await form.getByLabel('pullLimit').fill('20');
  // A setting inside an object (Docplanner's pushAuth) is a field of its own; its secret beside it
  // is a secret field too, empty and kept.
  const pushKey = form.locator('[id="setting-pushAuth.apiKey"]');
  expect(await pushKey.getAttribute('type')).toBe('password');
  expect(await pushKey.inputValue()).toBe('');
  await form.locator('[id="setting-pushAuth.headerName"]').fill('x-dp-key');
  await form.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Settings saved.').waitFor({ timeout: 15_000 });

  const answer = await call(server.base, 'GET', '/v1/instances/dp-edit');
  expect(answer.status).toBe(200);
  expect(answer.json.settings).toMatchObject({
    pullMode: 'multiple',
    pullLimit: 20,
    clientId: 'dp-client-1',
    clientSecret: '[redacted]',
    pushAuth: { apiKey: '[redacted]', headerName: 'x-dp-key' },
  });
  expect(await stored('dp-edit')).toMatchObject({
    clientSecret: CLIENT_SECRET,
    pushAuth: { apiKey: PUSH_KEY },
  });

  // A secret typed in replaces the stored one, and leaves the page once saved.
  await form.getByLabel('clientSecret').fill(NEW_SECRET);
  await form.getByRole('button', { name: 'Save settings' }).click();
  await expect.poll(async () => (await stored('dp-edit')).clientSecret, { timeout: 15_000 }).toBe(NEW_SECRET);
  await page.getByText('Settings saved.').waitFor({ timeout: 15_000 });
  await expect.poll(() => form.getByLabel('clientSecret').inputValue()).toBe('');
  const html = await page.content();
  for (const secret of [CLIENT_SECRET, PUSH_KEY, NEW_SECRET]) expect(html).not.toContain(secret);
}, 90_000);

it('an optional stored secret is removed with its checkbox, not by leaving its field empty', async () => {
  await hub.instances.upsert({ id: 'dp-remove', connector: 'docplanner', settings: DP_SETTINGS });
  const form = await openForm(page, 'dp-remove');
  await form.locator('[data-field="setting-clientSecret"]').getByLabel('Remove the stored value').check();
  await form.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Settings saved.').waitFor({ timeout: 15_000 });
  const kept = await stored('dp-remove');
  expect(kept).not.toHaveProperty('clientSecret');
  expect(kept).toMatchObject({ clientId: 'dp-client-1', pushAuth: { apiKey: PUSH_KEY } });
}, 60_000);

it("a value the API refuses shows the API's own message beside its field, and nothing is saved", async () => {
  await hub.instances.upsert({ id: 'dp-bad', connector: 'docplanner', settings: DP_SETTINGS });
  // What the API answers the same change, sent without the dashboard.
  const direct = await call(server.base, 'PUT', '/v1/instances/dp-bad', {
    body: { connector: 'docplanner', mode: 'push', settings: { ...DP_SETTINGS, pullLimit: 500 } },
  });
  expect(direct.status).toBe(422);
  const issue = (direct.json.errors as { pointer: string; message: string }[]).find(
    (e) => e.pointer === '/settings/pullLimit',
  )!;
  expect(issue.message).toBeTruthy();

  const form = await openForm(page, 'dp-bad');
  await form.getByLabel('pullLimit').fill('500');
  await form.getByRole('button', { name: 'Save settings' }).click();
  const field = form.locator('[data-field="setting-pullLimit"]');
  await field.locator('.field-error').waitFor({ timeout: 15_000 });
  expect(await field.locator('.field-error').textContent()).toBe(issue.message);
  expect(await form.getByLabel('pullLimit').getAttribute('aria-invalid')).toBe('true');
  expect((await stored('dp-bad')).pullLimit).toBe(50);
  await shot('instance-settings', page, '.instance-settings');

  // The route's own schema (the instance's fields, not the connector's settings) answers the same way.
  await form.getByLabel('pullLimit').fill('');
  await form.getByLabel('Mode', { exact: true }).selectOption('pull');
  await form.getByLabel('Pull interval, ms').fill('10');
  await form.getByRole('button', { name: 'Save settings' }).click();
  const interval = form.locator('[data-field="instance-interval"] .field-error');
  await interval.waitFor({ timeout: 15_000 });
  expect(await interval.textContent()).toContain('100');
  expect((await hub.instances.get('dp-bad')).mode).toBe('push');
}, 90_000);

it('changing where a kept secret is sent asks for that secret again, at its field', async () => {
  await hub.instances.upsert({ id: 'dp-move', connector: 'docplanner', settings: DP_SETTINGS });
  const form = await openForm(page, 'dp-move');
  await form.getByLabel('domain').fill('doctoralia.es');
  await form.getByRole('button', { name: 'Save settings' }).click();
  const secretError = form.locator('[data-field="setting-clientSecret"] .field-error');
  await secretError.waitFor({ timeout: 15_000 });
  expect(await secretError.textContent()).toContain('type it again');
  // The push key too: the API keeps no secret across such a change.
  expect(await form.locator('[data-field="setting-pushAuth.apiKey"] .field-error').textContent()).toContain(
    'type it again',
  );
  expect((await stored('dp-move')).domain).toBe('znanylekarz.pl');
}, 60_000);

it('an instance the configuration file declares says its settings change in the file, and offers no form', async () => {
  await hub.instances.upsert({
    id: 'dp-file',
    connector: 'docplanner',
    settings: DP_SETTINGS,
    managedBy: 'file',
  });
  // The API refuses to change it: the page must not offer what would fail.
  const refused = await call(server.base, 'PUT', '/v1/instances/dp-file', {
    body: { connector: 'docplanner', settings: DP_SETTINGS },
  });
  expect(refused.status).toBe(409);
  await page.goto(`${server.base}/ui/#/instances/dp-file`);
  const notice = page.locator('.file-managed');
  await notice.waitFor({ timeout: 15_000 });
  expect(await notice.textContent()).toContain('Declared in the configuration file');
  expect(await page.getByRole('form', { name: 'Edit settings' }).count()).toBe(0);
  expect(await page.content()).not.toContain(CLIENT_SECRET);
}, 60_000);

it('the settings form fits a 390 px phone screen', async () => {
  await hub.instances.upsert({ id: 'dp-phone', connector: 'docplanner', settings: DP_SETTINGS });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  try {
    const on = await phone.newPage();
    await on.goto(`${server.base}/ui/`);
    await on.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await on.getByLabel('Admin token').press('Enter');
    await on.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 15_000 });
    const form = await openForm(on, 'dp-phone');
    // An error shown too: its text wraps inside the screen.
    await form.getByLabel('pullLimit').fill('500');
    await form.getByRole('button', { name: 'Save settings' }).click();
    await form.locator('.field-error').first().waitFor({ timeout: 15_000 });
    const width = await on.evaluate(
      '({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })',
    );
    expect(width).toEqual({ scrollWidth: 390, innerWidth: 390 });
    const save = await form.getByRole('button', { name: 'Save settings' }).boundingBox();
    expect(save!.x + save!.width).toBeLessThanOrEqual(390);
    await shot('instance-settings-phone', on, '.instance-settings');
    for (const label of ['domain', 'clientSecret', 'allowedSourceIps (JSON)']) {
      const box = await form.getByLabel(label, { exact: true }).boundingBox();
      expect(box!.x + box!.width, label).toBeLessThanOrEqual(390);
    }
  } finally {
    await phone.close();
  }
}, 90_000);
