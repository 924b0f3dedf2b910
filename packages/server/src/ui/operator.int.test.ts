/**
 * The dashboard in a browser as an operator meets it (an audit in chromium): what the page says
 * where the API's answer alone would leave the operator guessing. Its own file and timeouts: the
 * browser is slow on a loaded machine.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, eventually, listen, makeHub, VENDOR_API_KEY } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { launchChromium } from './browser.test-support.ts';
import { uiPlugin } from './plugin.ts';

const database = useTestDatabase();
let hub: Hub;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
});

it('a hub with no admin token: the sign-in form says no token can sign in and why, not that the token was wrong', async () => {
  const closed = await listen(hub, {
    adminToken: undefined,
    plugins: [uiPlugin({ hub, adminToken: undefined })],
  });
  try {
    await page.goto(`${closed.base}/ui/`);
    await page.getByLabel('Admin token').fill('any-token-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 15_000 });
    expect(await alert.textContent()).toContain('server.adminToken');
  } finally {
    await closed.close();
  }
}, 60_000);

it('an older page of events that holds none, after a page that did, says no older event matches, not that none matches', async () => {
  const server = await listen(hub, { plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })] });
  try {
    await hub.instances.upsert({ id: 'shop', connector: 'hooktest', settings: { apiKey: VENDOR_API_KEY } });
    // Exactly a page (50) of the type: the first page is full and offers Older; the next holds none.
    for (let i = 0; i < 50; i++) {
      const pushed = await call(server.base, 'POST', '/hooks/shop', {
        body: { id: `e-${i}`, type: 'created', booking: `BK-${i}` },
        token: null,
        headers: { 'x-api-key': VENDOR_API_KEY },
      });
      expect(pushed.status).toBe(202);
    }
    await eventually(async () => (await hub.events.list({ limit: 100 })).items.length === 50, 30_000);
    await page.goto(`${server.base}/ui/`);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 15_000 });
    await page.goto(`${server.base}/ui/#/events?type=appointment.created`);
    const results = page.getByRole('table', { name: 'Events' });
    await results.getByRole('link', { name: 'appointment.created' }).first().waitFor({ timeout: 15_000 });
    expect(await results.getByRole('link', { name: 'appointment.created' }).count()).toBe(50);
    await page.getByRole('button', { name: 'Older →' }).click();
    await page.getByText('page 2').waitFor({ timeout: 15_000 });
    const empty = page.locator('[data-empty]');
    await empty.waitFor({ timeout: 15_000 });
    expect(await empty.textContent()).toBe('No older events match.');
  } finally {
    await server.close();
  }
}, 90_000);

it('on a phone, a page that looked at its 10,000 events without a match says so in full, Older included, on screen', async () => {
  const server = await listen(hub, { plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })] });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
  try {
    // More events of one type than a page looks at (eventStore.EVENT_LIST_SCAN), none of another.
    await sql`insert into switchyard.events (id, type, source, subject, time, envelope)
      select gen_random_uuid(), 'document.updated', 'shop', 'document/' || i, now(),
        jsonb_build_object('specversion', '1.0', 'id', gen_random_uuid(), 'type', 'document.updated',
          'source', 'shop', 'subject', 'document/' || i, 'time', now())
      from generate_series(1, 10050) i`.execute(hub.host.db);
    const on = await phone.newPage();
    await on.goto(`${server.base}/ui/`);
    await on.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await on.getByRole('button', { name: 'Sign in' }).click();
    await on.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 15_000 });
    await on.goto(`${server.base}/ui/#/events?type=appointment.nothing`);
    const message = on.getByText('No events match among the 10,000 this page looked at');
    await message.waitFor({ timeout: 15_000 });
    expect(await message.textContent()).toContain('Older → looks further back.');
    // All of it within the screen's width: not cut off in a box that scrolls sideways.
    const box = await message.boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    expect(await on.getByRole('button', { name: 'Older →' }).isEnabled()).toBe(true);
  } finally {
    await phone.close();
    await server.close();
  }
}, 90_000);
