// Shared pieces of the dashboard: the admin API client, hash routing and small components.

import htm from 'htm';
import { h } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export const html = htm.bind(h);

/** An admin API answer that was not 2xx; `problem` is the RFC 9457 document when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

const signedOutListeners = new Set();
/** Called when any call answers 401: the session ended or was never there. */
export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

/**
 * Calls the admin API with the session cookie. The `x-switchyard-ui` header is what the server
 * requires on cookie-authenticated changes (a cross-site form cannot send it).
 */
export async function api(method, path, body) {
  const headers = { 'x-switchyard-ui': '1', accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/ui/session')) for (const fn of signedOutListeners) fn();
    throw new ApiError(res.status, json);
  }
  return json;
}

/** `?a=1&b=` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The current hash route: `#/events/abc?type=x` → { path: ['events', 'abc'], params: { type: 'x' } }. */
export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [p, q = ''] = raw.split('?');
  // A hand-edited or truncated link (`#/events/100%`) holds a bad escape: kept as typed (the page
  // says there is no such thing), never thrown (it unmounted the app and left the page blank).
  const decode = (segment) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  };
  const path = p.split('/').filter(Boolean).map(decode);
  return { path, params: Object.fromEntries(new URLSearchParams(q)) };
}

export function link(path, params = {}) {
  return `#/${path}${query(params)}`;
}

export function navigate(path, params = {}) {
  location.hash = link(path, params);
}

/**
 * Loads `load()` now and whenever `deps` change; `reload()` loads again. Optional live polling.
 * A failed load keeps the data last loaded with the same `deps` (the overview shows an outage
 * above its last numbers), never data of other `deps`: a search the API refused showed the
 * previous search's results under the error, as if they matched.
 */
export function useLoad(load, deps, { everyMs } = {}) {
  const [state, setState] = useState({ loading: true, data: undefined, error: undefined, of: undefined });
  const seq = useRef(0);
  const run = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await load();
      if (mine === seq.current) setState({ loading: false, data, error: undefined, of: run });
    } catch (error) {
      if (mine === seq.current)
        setState((s) => ({ loading: false, data: s.of === run ? s.data : undefined, error, of: s.of }));
    }
  }, deps);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    run();
    if (!everyMs) return undefined;
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') run();
    }, everyMs);
    return () => clearInterval(timer);
  }, [run, everyMs]);
  return { ...state, reload: run };
}

/**
 * A time in the browser's zone, named (`Dec 07, 2026, 05:20:15 AM PST`): the operator compares it
 * with a vendor's portal, a subscriber's log or a colleague's screen in another zone, and a bare
 * clock time could be read as any of theirs. The exact ISO value is the element's title.
 */
export function fmtTime(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  });
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function Time({ value }) {
  return value ? html`<time datetime=${value} title=${value}>${fmtTime(value)}</time>` : html`<span>—</span>`;
}

const TONES = {
  succeeded: 'ok',
  normalized: 'ok',
  approve: 'ok',
  approved: 'ok',
  enabled: 'ok',
  dead: 'bad',
  failed: 'bad',
  refuse: 'bad',
  refused: 'bad',
  disabled: 'bad',
  error: 'bad',
  pending: 'wait',
  in_flight: 'wait',
  held: 'warn',
  received: 'wait',
  deciding: 'wait',
  skipped: 'mute',
  replayed: 'mute',
  ignored: 'mute',
};

export function Badge({ value, tone }) {
  return html`<span class=${`badge ${tone || TONES[value] || 'mute'}`}>${value ?? '—'}</span>`;
}

export function Json({ value, label }) {
  return html`<pre class="json" tabindex="0" aria-label=${label || 'JSON'}>${JSON.stringify(value, null, 2)}</pre>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error.message || String(error)}</div>`;
}

export function Loading({ state }) {
  if (state.error) return html`<${ErrorBox} error=${state.error} />`;
  if (state.loading && state.data === undefined)
    return html`<p class="muted" aria-live="polite">Loading…</p>`;
  return null;
}

/**
 * Cursor pagination: the API gives `nextCursor`; the pager keeps the cursors of the pages before
 * this one so "Newer" works without offsets.
 */
/**
 * The cursors of a paged list (its pages so far, the newest first), kept in the browser's history
 * as well as in the page: each move is a history entry of its own (`history.pushState`, the same
 * URL), so Back after "Older →" shows the page before, not the previous screen, and a reload (which
 * keeps `history.state`) stays on the page it was on. Another list (`resetKey`: its filters) starts
 * at the newest page.
 */
export function usePager(resetKey) {
  const saved = () => {
    const state = history.state;
    return state?.pager?.key === resetKey && Array.isArray(state.pager.stack)
      ? state.pager.stack
      : [undefined];
  };
  const [stack, setStack] = useState(saved);
  const shown = useRef(resetKey);
  useEffect(() => {
    // Not on the first render: the stack was read from the history entry then.
    if (shown.current !== resetKey) setStack(saved());
    shown.current = resetKey;
    const back = () => setStack(saved());
    addEventListener('popstate', back);
    return () => removeEventListener('popstate', back);
  }, [resetKey]);
  const go = (next) => {
    history.pushState({ ...history.state, pager: { key: resetKey, stack: next } }, '');
    setStack(next);
  };
  const cursor = stack[stack.length - 1];
  return {
    cursor,
    page: stack.length,
    older: (next) => go([...stack, next]),
    newer: () => go(stack.length > 1 ? stack.slice(0, -1) : stack),
    first: () => go([undefined]),
  };
}

export function Pager({ pager, nextCursor }) {
  return html`<nav class="pager" aria-label="Pages">
    <button type="button" onClick=${pager.first} disabled=${pager.page === 1}>Newest</button>
    <button type="button" onClick=${pager.newer} disabled=${pager.page === 1}>← Newer</button>
    <span class="muted">page ${pager.page}</span>
    <button type="button" onClick=${() => pager.older(nextCursor)} disabled=${!nextCursor}>Older →</button>
  </nav>`;
}

/** A confirmation dialog (native <dialog>: focus is trapped and Escape cancels). */
export function Confirm({ open, title, children, confirmLabel = 'Confirm', onConfirm, onCancel, busy }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return html`<dialog ref=${ref} class="confirm" aria-labelledby="confirm-title" onCancel=${(e) => {
    e.preventDefault();
    onCancel();
  }}>
    <h2 id="confirm-title">${title}</h2>
    <div>${children}</div>
    <div class="actions">
      <button type="button" onClick=${onCancel}>Cancel</button>
      <button type="button" class="primary" onClick=${onConfirm} disabled=${busy}>${confirmLabel}</button>
    </div>
  </dialog>`;
}

/** Runs an action, keeping its busy flag, message and error for display. */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: undefined, message: undefined });
  const run = useCallback(async (fn, message) => {
    setState({ busy: true, error: undefined, message: undefined });
    try {
      const result = await fn();
      setState({
        busy: false,
        error: undefined,
        message: typeof message === 'function' ? message(result) : message,
      });
      return result;
    } catch (error) {
      setState({ busy: false, error, message: undefined });
      return undefined;
    }
  }, []);
  return { ...state, run, clear: () => setState({ busy: false, error: undefined, message: undefined }) };
}

export function ActionStatus({ action }) {
  return html`<div aria-live="polite">
    ${action.busy ? html`<p class="muted">Working…</p>` : null}
    ${action.message ? html`<p class="notice">${action.message}</p>` : null}
    <${ErrorBox} error=${action.error} />
  </div>`;
}

/**
 * The API's refusal by field pointer. A pointer below a field (`/settings/oauth/clientId`) is its
 * field's; ajv's `required` names the property in its message, at the object's pointer. What no
 * field shows stays in `rest`, shown under the form.
 */
export function fieldErrors(problem, pointers) {
  const byField = {};
  const rest = [];
  const put = (pointer, message) => {
    const at = pointers
      .filter((p) => pointer === p || pointer.startsWith(`${p}/`))
      .sort((a, b) => b.length - a.length)[0];
    if (at) byField[at] = byField[at] ? `${byField[at]}; ${message}` : message;
    else rest.push(`${pointer || '/'} ${message}`);
  };
  for (const issue of problem?.errors ?? []) {
    const missing = /required property '([^']+)'/.exec(issue.message ?? '');
    put(missing ? `${issue.pointer}/${missing[1]}` : (issue.pointer ?? ''), issue.message);
  }
  // Kept secrets may not follow a changed URL (SY_HTTP_SECRETS_REQUIRED): the secrets to type again.
  if (problem?.code === 'SY_HTTP_SECRETS_REQUIRED')
    for (const pointer of problem.details?.secrets ?? [])
      put(pointer, 'type it again: the address it is sent to changed');
  return { byField, rest };
}

/**
 * A labelled form field with its hint and the API's error for it; `data-field` is its input's id.
 *
 * @example
 * html`<${Field} id="sub-url" label="URL" error=${errors.byField['/url']}><input id="sub-url" name="url" /></${Field}>`
 */
export function Field({ id, label, hint, error, children }) {
  return html`<div class="field" data-field=${id}>
    <label for=${id}>${label}</label>
    ${children}
    ${hint ? html`<small class="hint" id=${`${id}-hint`}>${hint}</small>` : null}
    ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
  </div>`;
}

/** The attributes tying an input to its hint and error, and marking it invalid. */
export function described(id, hint, error) {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return { 'aria-describedby': ids || undefined, 'aria-invalid': error ? 'true' : undefined };
}
