// The dashboard shell: sign-in, navigation and the hash router.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, ErrorBox, html, onSignedOut, parseHash } from './lib.js';
import { CommandsView, CommandView } from './views/commands.js';
import { DeliveriesView, DeliveryView } from './views/deliveries.js';
import { EventsView, EventView } from './views/events.js';
import { GatesView, GateView } from './views/gates.js';
import { InboundView, InstancesView, InstanceView } from './views/instances.js';
import { OverviewView } from './views/overview.js';
import { SubscriptionsView, SubscriptionView } from './views/subscriptions.js';

const SECTIONS = [
  ['', 'Overview', 'o'],
  ['events', 'Events', 'e'],
  ['deliveries', 'Deliveries', 'd'],
  ['subscriptions', 'Subscriptions', 's'],
  ['instances', 'Connectors', 'c'],
  ['gates', 'Gates', 'g'],
  ['commands', 'Commands', 'm'],
];

function SignIn({ onSignedIn, ended }) {
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current?.focus(), []);
  async function submit(e) {
    e.preventDefault();
    const token = input.current.value;
    setBusy(true);
    setError(undefined);
    try {
      await api('POST', '/ui/session', { token });
      // The token is not kept: from here on the HttpOnly session cookie speaks for the browser.
      input.current.value = '';
      onSignedIn();
    } catch (err) {
      // The hub's reason: a wrong token, or none can sign in (no server.adminToken configured).
      setError(
        err instanceof ApiError && err.status === 401 ? new Error(`Sign-in refused: ${err.message}.`) : err,
      );
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="signin">
    <form onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title">Switchyard</h1>
      ${
        // Without it a refused request (a replay, a save) only swapped the page for this form.
        ended
          ? html`<p class="notice" role="status">Your session ended (it expired, was signed out elsewhere, or the admin token changed). Sign in again; a change you had just asked for was not made.</p>`
          : null
      }
      <p class="muted">Sign in with the hub's admin token.</p>
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required ref=${input} />
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
      <${ErrorBox} error=${error} />
    </form>
  </main>`;
}

/** Detail views are keyed by id: a secret shown once or an action's message stays on its own page. */
function route(path, params) {
  const [section, id] = path;
  switch (section) {
    case undefined:
      return html`<${OverviewView} />`;
    case 'events':
      return id ? html`<${EventView} id=${id} key=${id} />` : html`<${EventsView} params=${params} />`;
    case 'deliveries':
      return id ? html`<${DeliveryView} id=${id} key=${id} />` : html`<${DeliveriesView} params=${params} />`;
    case 'subscriptions':
      return id ? html`<${SubscriptionView} id=${id} key=${id} />` : html`<${SubscriptionsView} />`;
    case 'instances':
      return id ? html`<${InstanceView} id=${id} key=${id} />` : html`<${InstancesView} />`;
    case 'inbound':
      return html`<${InboundView} id=${id} key=${id} />`;
    case 'gates':
      return id ? html`<${GateView} id=${id} key=${id} />` : html`<${GatesView} params=${params} />`;
    case 'commands':
      return id ? html`<${CommandView} id=${id} key=${id} />` : html`<${CommandsView} params=${params} />`;
    default:
      return html`<p>No such page. <a href="#/">Back to the overview</a>.</p>`;
  }
}

function Shell({ onSignOut }) {
  const [hash, setHash] = useState(location.hash);
  const main = useRef(null);
  useEffect(() => {
    const on = () => {
      setHash(location.hash);
      // Move focus to the new page so keyboard and screen-reader users land on it.
      requestAnimationFrame(() => {
        main.current?.focus({ preventScroll: true });
        // On a phone the sections scroll sideways in the top bar: keep the current one in view.
        document
          .querySelector('.top nav a[aria-current="page"]')
          ?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      });
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    // "g" then a letter jumps to a section; "/" focuses the page's first search field.
    let pendingG = false;
    const onKey = (e) => {
      const t = e.target;
      if (e.ctrlKey || e.metaKey || e.altKey || t.closest?.('input, textarea, select, dialog')) return;
      if (e.key === '/') {
        const field = document.querySelector('main [data-search]');
        if (field) {
          e.preventDefault();
          field.focus();
        }
        return;
      }
      if (pendingG) {
        pendingG = false;
        const hit = SECTIONS.find((s) => s[2] === e.key);
        if (hit) location.hash = `#/${hit[0]}`;
        return;
      }
      if (e.key === 'g') pendingG = true;
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
  const { path, params } = parseHash(hash);
  const current = path[0] === 'inbound' ? 'instances' : (path[0] ?? '');
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      main.current?.focus();
    }}>Skip to content</a>
    <header class="top">
      <span class="brand">Switchyard</span>
      <nav aria-label="Sections">
        ${SECTIONS.map(
          ([p, label, key]) =>
            html`<a href=${`#/${p}`} aria-current=${current === p ? 'page' : undefined} title=${`g ${key}`}>${label}</a>`,
        )}
      </nav>
      <button type="button" class="link" onClick=${onSignOut}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" ref=${main}>${route(path, params)}</main>
  </div>`;
}

function App() {
  // undefined: checking; the session cookie is HttpOnly, so ask the server whether it admits us.
  const [signedIn, setSignedIn] = useState(undefined);
  // Whether the hub ended the session under the operator (a 401 while signed in), not a sign-out.
  const [ended, setEnded] = useState(false);
  const was = useRef(signedIn);
  was.current = signedIn;
  useEffect(() => {
    // Only a 401 means signed out. Any other failure (a 503 while the database cannot check the
    // session, the hub unreachable) sent a reload during an outage to the sign-in form, where
    // signing in fails too; the pages show the error instead and load once the hub answers.
    api('GET', '/v1/dashboard/deliveries/position')
      .then(() => setSignedIn(true))
      .catch((error) => setSignedIn(!(error instanceof ApiError && error.status === 401)));
    return onSignedOut(() => {
      // The check on loading the page answers 401 too when there was no session to end.
      if (was.current) setEnded(true);
      setSignedIn(false);
    });
  }, []);
  async function signOut() {
    // A refresh answered 401 while signing out is no session ended under the operator.
    was.current = false;
    await api('DELETE', '/ui/session').catch(() => {});
    setEnded(false);
    setSignedIn(false);
  }
  if (signedIn === undefined) return html`<p class="boot">Loading…</p>`;
  if (!signedIn)
    return html`<${SignIn}
      ended=${ended}
      onSignedIn=${() => {
        setEnded(false);
        setSignedIn(true);
      }}
    />`;
  return html`<${Shell} onSignOut=${signOut} />`;
}

render(html`<${App} />`, document.getElementById('root'));
