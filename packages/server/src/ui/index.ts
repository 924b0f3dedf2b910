/**
 * The operator dashboard (`/ui`): see docs/dashboard.md.
 *
 * @example
 * ```ts
 * import { uiPlugin } from './ui/index.ts';
 * const app = await buildApp({ hub, adminToken, plugins: [uiPlugin({ hub, adminToken })] });
 * ```
 */

export { checkUiSession, SESSION_COOKIE, UI_HEADER } from '../http/plugins/session.ts';
export { dashboardApiRoutes } from './api-extras.ts';
export { registerUi, type UiOptions, uiPlugin } from './plugin.ts';
