/**
 * Debian's chromium, headless, for the dashboard's browser tests: one launch, so every test file
 * runs the same browser with the same switches (no network of its own, nothing but the hub's pages).
 */
import { type Browser, chromium } from 'playwright-core';

/** The browser binary: `CHROMIUM_PATH`, else Debian's. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Starts headless chromium with no sandbox (the tests run as root), no GPU and no background traffic.
 *
 * @example
 * ```ts
 * const browser = await launchChromium();
 * const page = await (await browser.newContext()).newPage();
 * ```
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
