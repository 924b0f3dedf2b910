/**
 * The dashboard in a browser as an operator meets it (an audit in chromium): what the page says
 * where the API's answer alone would leave the operator guessing. Its own file and timeouts: the
 * browser is slow on a loaded machine.
 */
import { useTestDatabase } from '@switchyard/testing';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listen, makeHub } from '../http/app.test-support.ts';
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
