/**
 * Changing a webhook subscription's destination and delivery in the dashboard (url, format,
 * timeout, ordering, retries, rate, when to disable it), in Debian's chromium against a started hub
 * on real Postgres: the save is `PATCH /v1/subscriptions/{id}` and what the API refuses is shown at
 * the field it points at, in the API's own words. Its own file and timeouts: the browser is slow on
 * a loaded machine.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { useTestDatabase } from '@switchyard/testing';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
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

beforeAll(async () => {
  hub = await makeHub(database.url());
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

/** With `SWITCHYARD_SCREENSHOTS=1`, the screenshot of docs/dashboard.md named `name`: the form's card. */
async function shot(name: string, on: Page) {
  if (!SHOTS) return;
  mkdirSync(SHOT_DIR, { recursive: true });
  // The top bar stays on screen as the page scrolls: out of the way, it would cover the card.
  await on.evaluate("document.querySelector('header.top').style.position = 'static'");
  await on.locator('#delivery').screenshot({ path: `${SHOT_DIR}${name}.png` });
}

async function openForm(on: Page, id: string) {
  await on.goto(`${server.base}/ui/#/subscriptions/${id}`);
  const form = on.getByRole('form', { name: 'Edit delivery' });
  await form.waitFor({ timeout: 15_000 });
  return form;
}

it('changes a webhook’s delivery: the API then answers the new values', async () => {
  await hub.subscriptions.create({ id: 'crm', url: 'https://crm.example/hooks', eventTypes: ['*'] });
  const form = await openForm(page, 'crm');
  await form.getByLabel('URL').fill('https://crm.example/hooks/v2');
  await form.getByLabel('Timeout per attempt, ms').fill('5000');
  await form.getByLabel('Retry schedule, ms').fill('0, 1000, 60000');
  await form.getByLabel('After a dead delivery').selectOption('release');
  await form.getByLabel('At most, deliveries per second').fill('2.5');
  await form.getByRole('button', { name: 'Save delivery' }).click();
  await page.getByText('Delivery saved.').waitFor({ timeout: 15_000 });
  const answer = await call(server.base, 'GET', '/v1/subscriptions/crm');
  expect(answer.json).toMatchObject({
    url: 'https://crm.example/hooks/v2',
    timeoutMs: 5000,
    retryScheduleMs: [0, 1000, 60000],
    ordering: 'release',
    rateLimit: { perSecond: 2.5 },
    format: 'cloudevents',
  });
}, 60_000);

it("a value the API refuses shows the API's own message at its field, and nothing is saved", async () => {
  await hub.subscriptions.create({ id: 'erp', url: 'https://erp.example/hooks', eventTypes: ['*'] });
  const direct = await call(server.base, 'PATCH', '/v1/subscriptions/erp', {
    body: { url: 'ftp://erp.example/hooks' },
  });
  expect(direct.status).toBe(400);
  const issue = (direct.json.errors as { pointer: string; message: string }[]).find(
    (e) => e.pointer === '/url',
  )!;

  const form = await openForm(page, 'erp');
  await form.getByLabel('URL').fill('ftp://erp.example/hooks');
  await form.getByRole('button', { name: 'Save delivery' }).click();
  const error = form.locator('[data-field="sub-url"] .field-error');
  await error.waitFor({ timeout: 15_000 });
  expect(await error.textContent()).toBe(issue.message);
  expect(await form.getByLabel('URL').getAttribute('aria-invalid')).toBe('true');
  expect((await hub.subscriptions.get('erp')).url).toBe('https://erp.example/hooks');
  await shot('subscription-delivery', page);
}, 60_000);

it('a subscription the configuration file declares shows its delivery, not changeable here, and says so', async () => {
  await hub.subscriptions.create({
    id: 'from-file',
    url: 'https://file.example/hooks',
    eventTypes: ['*'],
    managedBy: 'file',
  });
  const refused = await call(server.base, 'PATCH', '/v1/subscriptions/from-file', {
    body: { timeoutMs: 5000 },
  });
  expect(refused.status).toBe(409);
  const form = await openForm(page, 'from-file');
  expect(await form.getByLabel('URL').inputValue()).toBe('https://file.example/hooks');
  expect(await form.getByLabel('URL').isDisabled()).toBe(true);
  expect(await form.getByRole('button', { name: 'Save delivery' }).isDisabled()).toBe(true);
  expect(await page.locator('#delivery').textContent()).toContain('Declared in the configuration file');
}, 60_000);

it('the delivery form fits a 390 px phone screen', async () => {
  await hub.subscriptions.create({ id: 'phone', url: 'https://phone.example/hooks', eventTypes: ['*'] });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  try {
    const on = await phone.newPage();
    await on.goto(`${server.base}/ui/`);
    await on.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await on.getByLabel('Admin token').press('Enter');
    await on.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 15_000 });
    const form = await openForm(on, 'phone');
    await form.getByLabel('Timeout per attempt, ms').fill('50');
    await form.getByRole('button', { name: 'Save delivery' }).click();
    await form.locator('.field-error').first().waitFor({ timeout: 15_000 });
    const width = await on.evaluate(
      '({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })',
    );
    expect(width).toEqual({ scrollWidth: 390, innerWidth: 390 });
    for (const label of ['URL', 'Timeout per attempt, ms', 'Retry schedule, ms']) {
      const box = await form.getByLabel(label).boundingBox();
      expect(box!.x + box!.width, label).toBeLessThanOrEqual(390);
    }
  } finally {
    await phone.close();
  }
}, 90_000);
