/**
 * The dashboard in a browser at its edges, with a hub of its own: what the page does when its API
 * answers something other than data (the database out while it loads).
 */
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_TOKEN, call, eventually, listen, makeHub, VENDOR_API_KEY } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { setConnectionsAllowed } from '../storage/database.test-support.ts';
import { launchChromium } from './browser.test-support.ts';
import { uiPlugin } from './plugin.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;
let browser: Browser;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  server = await listen(hub, { plugins: [uiPlugin({ hub, adminToken: ADMIN_TOKEN })] });
  await hub.instances.upsert({ id: 'shop', connector: 'hooktest', settings: { apiKey: VENDOR_API_KEY } });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  page = await context.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await hub?.stop();
});

async function signIn(on: Page = page): Promise<void> {
  await on.goto(`${server.base}/ui/`);
  await on.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await on.getByRole('button', { name: 'Sign in' }).click();
  await on.getByRole('heading', { name: 'Overview' }).waitFor();
}

it('a page loaded while the database is out keeps the session: it shows the 503, not the sign-in form', async () => {
  await signIn();
  const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  try {
    await setConnectionsAllowed(admin, database.name(), false);
    await page.reload();
    // The hub answers the session check 503 while it cannot read the session (docs/dashboard.md).
    await page
      .getByRole('alert')
      .filter({ hasText: 'cannot be used right now' })
      .waitFor({ timeout: 15_000 });
    expect(await page.getByLabel('Admin token').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
  } finally {
    await setConnectionsAllowed(admin, database.name(), true);
    await admin.end();
  }
  // The overview refreshes by itself once the database answers again, still signed in.
  await page.locator('[data-health]').first().waitFor({ timeout: 30_000 });
  expect(await page.getByLabel('Admin token').count()).toBe(0);
}, 90_000);

it('a search the API refuses shows its error and no results: the previous search’s rows are not left as if they matched', async () => {
  const pushed = await call(server.base, 'POST', '/hooks/shop', {
    body: { id: 'e-1', type: 'created', booking: 'BK-1' },
    token: null,
    headers: { 'x-api-key': VENDOR_API_KEY },
  });
  expect(pushed.status).toBe(202);
  await eventually(async () => (await hub.events.list({})).items.length === 1);
  await page.goto(`${server.base}/ui/#/events`);
  const results = page.getByRole('table', { name: 'Events' });
  await results.getByRole('link', { name: 'appointment.created' }).waitFor();
  // Longer than the route takes (400): typed or pasted by an operator, or a link cut wrong.
  await page.getByLabel('Vendor id').fill('9'.repeat(301));
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('alert').filter({ hasText: 'vendorId' }).waitFor();
  expect(await results.count()).toBe(0);
}, 90_000);

it('a session that ends under the operator says so on the sign-in form; a first visit and a sign-out do not', async () => {
  const fresh = await context.browser()!.newContext();
  const first = await fresh.newPage();
  try {
    await first.goto(`${server.base}/ui/`);
    await first.getByLabel('Admin token').waitFor();
    expect(await first.getByText('Your session ended').count()).toBe(0);
  } finally {
    await fresh.close();
  }

  // Still signed in from the tests before.
  await page.goto(`${server.base}/ui/#/events`);
  await page.getByRole('heading', { name: 'Events' }).waitFor();
  // Signed out elsewhere with the same cookie (another tab, or it expired): the row is gone.
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const out = await call(server.base, 'DELETE', '/ui/session', { token: null, headers: { cookie } });
  expect(out.status).toBe(204);
  await page.getByRole('link', { name: 'Deliveries' }).click();
  await page.getByRole('status').filter({ hasText: 'Your session ended' }).waitFor({ timeout: 15_000 });
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Back where it was.
  await page.getByRole('heading', { name: 'Deliveries' }).waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin token').waitFor();
  expect(await page.getByText('Your session ended').count()).toBe(0);
}, 90_000);

it('a subscription created on the page empties the form, so a second click cannot create a twin', async () => {
  // Signed out by the test before. Signed in, the Overview shown, before it navigates: a sign-in
  // answered after the navigation showed the Overview in its place, and the Sign out button alone
  // did not say the sign-in was over (the fresh-clone CI, twice in three runs).
  await signIn();
  await page.goto(`${server.base}/ui/#/subscriptions`);
  await page.getByRole('heading', { name: 'Subscriptions' }).waitFor();
  await page.getByText('New subscription').click();
  const form = page.getByRole('form', { name: 'New subscription' });
  await form.getByLabel('URL').fill('http://127.0.0.1:9/hooks');
  await form.getByLabel('Event types').fill('appointment.*');
  await form.getByLabel('Allow private addresses').check();
  await form.getByRole('button', { name: 'Create' }).click();
  await page.locator('[data-secret]').waitFor();
  expect(await form.getByLabel('URL').inputValue()).toBe('');
  expect(await form.getByLabel('Event types').inputValue()).toBe('');
  expect((await hub.subscriptions.list()).length).toBe(1);
}, 90_000);

it('Sign out while the database is out still signs this browser out: the page reloaded afterwards asks for the token', async () => {
  // Signed in by the test before.
  await page.goto(`${server.base}/ui/#/events`);
  await page.getByRole('heading', { name: 'Events' }).waitFor();
  const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  try {
    await setConnectionsAllowed(admin, database.name(), false);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
  } finally {
    await setConnectionsAllowed(admin, database.name(), true);
    await admin.end();
  }
  await eventually(async () => (await hub.subscriptions.list()).length > 0);
  await page.reload();
  await page.getByLabel('Admin token').waitFor({ timeout: 15_000 });
  expect(await context.cookies()).toHaveLength(0);
}, 90_000);

it("names the browser's zone beside every time shown: an operator in Los Angeles reads PST", async () => {
  const r = await call(server.base, 'POST', '/hooks/shop', {
    body: { id: 'zone-1', type: 'created', booking: 'b-zone' },
    token: null,
    headers: { 'x-api-key': VENDOR_API_KEY },
  });
  expect(r.status).toBe(202);
  const [message] = (await hub.inbound.list({ instanceId: 'shop', limit: 1 })).items;
  const abroad = await browser.newContext({ timezoneId: 'America/Los_Angeles', locale: 'en-US' });
  try {
    const on = await abroad.newPage();
    await signIn(on);
    await on.goto(`${server.base}/ui/#/inbound/${message!.id}`);
    const received = on.locator('time').first();
    await received.waitFor();
    // Before: "Dec 07, 2026, 05:20:15 AM", which an operator beside a vendor's portal in UTC (or a
    // colleague in Warsaw) read as their own clock.
    expect(await received.textContent()).toMatch(/ P[SD]T$/);
    expect(await received.getAttribute('datetime')).toBe(message!.receivedAt.toISOString());
  } finally {
    await abroad.close();
  }
}, 90_000);

it("says the events' time range filters on when the hub stored an event, not the vendor time shown", async () => {
  // The filters read `since`/`until` of GET /v1/events (the stored time, its index); the table's
  // Happened column is the vendor's time. Labelled "From"/"Until" above that column, the range read
  // as a filter on it: an event the vendor dated last week, stored today, seemed not to match.
  // A browser of its own: the next test counts on the shared page being signed out.
  const own = await browser.newContext();
  try {
    const on = await own.newPage();
    await signIn(on);
    await on.goto(`${server.base}/ui/#/events`);
    expect(await on.getByLabel('Stored from', { exact: true }).getAttribute('name')).toBe('since');
    expect(await on.getByLabel('Stored until', { exact: true }).getAttribute('name')).toBe('until');
    expect(await on.getByRole('columnheader', { name: 'Happened' }).getAttribute('title')).toBe(
      "The vendor's time of the event; the Stored from/until filters read when the hub stored it",
    );
  } finally {
    await own.close();
  }
}, 60_000);

it('a list page is a history entry: Back after "Older →" shows the newer page, and a reload stays on the page', async () => {
  // More than two pages of events (50 a page), stored as the fan-out stores them.
  await sql`with made as (select gen_random_uuid() as id, 'appointment/paged-' || i as subject
      from generate_series(1, 120) i)
    insert into switchyard.events (id, type, source, subject, time, envelope)
    select id, 'appointment.created', 'shop', subject, now(), jsonb_build_object('specversion', '1.0',
      'id', id, 'type', 'appointment.created', 'source', 'shop', 'subject', subject,
      'time', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
      'datacontenttype', 'application/json', 'data', '{}'::jsonb)
    from made`.execute(hub.host.db);
  // Signed out by the test before.
  await signIn();
  await page.goto(`${server.base}/ui/#/subscriptions`);
  await page.getByRole('heading', { name: 'Subscriptions' }).waitFor();
  await page.goto(`${server.base}/ui/#/events`);
  const pager = page.getByRole('navigation', { name: 'Pages' });
  await pager.getByText('page 1').waitFor();
  await pager.getByRole('button', { name: 'Older →' }).click();
  await pager.getByText('page 2').waitFor();
  await pager.getByRole('button', { name: 'Older →' }).click();
  await pager.getByText('page 3').waitFor();
  // Before: Back left the list for the previous screen, and a reload went back to page 1.
  await page.goBack();
  await pager.getByText('page 2').waitFor();
  await page.reload();
  await pager.getByText('page 2').waitFor();
  // Reloaded, the list renders once its restored page has loaded: these are page 2's rows.
  const firstRow = () =>
    page.getByRole('table', { name: 'Events' }).locator('tbody tr').first().textContent();
  const second = await firstRow();
  await page.goBack();
  await pager.getByText('page 1').waitFor();
  await eventually(async () => (await firstRow()) !== second, 30_000);
  await page.goForward();
  await pager.getByText('page 2').waitFor();
  // The label moves at once, the rows once page 2 has loaded again.
  await eventually(async () => (await firstRow()) === second, 30_000);
  await page.goBack();
  await page.goBack();
  await page.getByRole('heading', { name: 'Subscriptions' }).waitFor();
}, 90_000);
