// Subscriptions: list, create, edit filters and delivery, disable/enable, rotate the secret, send a
// test event.
import { useState } from 'preact/hooks';
import {
  ActionStatus,
  ApiError,
  api,
  Badge,
  Confirm,
  described,
  Field,
  fieldErrors,
  fmtMs,
  html,
  Loading,
  link,
  navigate,
  Time,
  useAction,
  useLoad,
} from '../lib.js';

const list = (v) =>
  String(v ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** A secret shown once, with a copy button; it is gone when the page changes. */
function OnceSecret({ secret }) {
  const [copied, setCopied] = useState(false);
  return html`<div class="secret" role="status">
    <p><strong>New signing secret — shown once.</strong> Give it to the subscriber now; the hub keeps only a sealed copy.</p>
    <code data-secret>${secret}</code>
    <button type="button" onClick=${async () => {
      await navigator.clipboard?.writeText(secret).catch(() => {});
      setCopied(true);
    }}>${copied ? 'Copied' : 'Copy'}</button>
  </div>`;
}

function CreateForm({ onCreated }) {
  const action = useAction();
  const [secret, setSecret] = useState();
  async function submit(e) {
    e.preventDefault();
    // Kept now: the event's currentTarget is null once the request below has been awaited, so the
    // form was never emptied and a second click created a twin subscription.
    const form = e.currentTarget;
    const f = new FormData(form);
    const body = {
      kind: f.get('kind'),
      format: f.get('format'),
      eventTypes: list(f.get('eventTypes')).length ? list(f.get('eventTypes')) : ['*'],
      ...(list(f.get('sources')).length ? { sources: list(f.get('sources')) } : {}),
      ...(f.get('kind') === 'webhook' ? { url: String(f.get('url')).trim() } : {}),
      ...(f.get('id') ? { id: String(f.get('id')).trim() } : {}),
      ...(f.get('allowPrivate') ? { allowPrivateAddresses: true } : {}),
    };
    const r = await action.run(
      () => api('POST', '/v1/subscriptions', body),
      (r) => `Created ${r.subscription.id}.`,
    );
    if (r) {
      setSecret(r.secret);
      form.reset();
      onCreated();
    }
  }
  return html`<details class="card">
    <summary>New subscription</summary>
    <form class="filters" onSubmit=${submit} aria-label="New subscription">
      <label>Id (optional)<input name="id" /></label>
      <label>Kind<select name="kind"><option value="webhook">webhook</option><option value="pull">pull</option></select></label>
      <label>Format<select name="format"><option value="cloudevents">cloudevents</option><option value="fhir-r4">fhir-r4</option><option value="fhir-r4-notification">fhir-r4-notification</option></select></label>
      <label class="wide">URL<input name="url" type="url" placeholder="https://crm.example/hooks" /></label>
      <label>Event types<input name="eventTypes" placeholder="appointment.*, slot.blocked" /></label>
      <label>Sources<input name="sources" placeholder="all instances" /></label>
      <label class="inline"><input type="checkbox" name="allowPrivate" /> Allow private addresses</label>
      <div class="actions"><button type="submit" class="primary" disabled=${action.busy}>Create</button></div>
    </form>
    <${ActionStatus} action=${action} />
    ${secret ? html`<${OnceSecret} secret=${secret} />` : null}
  </details>`;
}

export function SubscriptionsView() {
  const state = useLoad(() => api('GET', '/v1/subscriptions'), []);
  return html`<section>
    <div class="head"><h1>Subscriptions</h1></div>
    <${CreateForm} onCreated=${state.reload} />
    <${Loading} state=${state} />
    ${
      state.data &&
      html`<table class="results" aria-label="Subscriptions">
        <thead><tr><th>Id</th><th>State</th><th>Kind</th><th>Format</th><th>Destination</th><th>Event types</th><th>Sources</th><th>Consecutive dead</th><th>Managed by</th></tr></thead>
        <tbody>${state.data.items.map(
          (s) => html`<tr>
            <td><a href=${link(`subscriptions/${s.id}`)}>${s.id}</a></td>
            <td><${Badge} value=${s.disabledAt ? 'disabled' : 'enabled'} /></td>
            <td>${s.kind}</td><td>${s.format}</td><td class="clip">${s.url ?? 'pull feed'}</td>
            <td>${s.eventTypes.join(', ')}</td><td>${s.sources?.join(', ') ?? 'all'}</td>
            <td>${s.consecutiveDead}</td><td>${s.managedBy}</td></tr>`,
        )}</tbody>
      </table>`
    }
  </section>`;
}

function TestEvent({ sub }) {
  const action = useAction();
  const [answer, setAnswer] = useState();
  async function submit(e) {
    e.preventDefault();
    const type = String(new FormData(e.currentTarget).get('type') || 'hub.test');
    setAnswer(undefined);
    const r = await action.run(() =>
      api('POST', `/v1/subscriptions/${encodeURIComponent(sub.id)}/test`, { type }),
    );
    if (r) setAnswer(r);
  }
  return html`<article class="card">
    <h2>Send a test event</h2>
    <form class="filters" onSubmit=${submit} aria-label="Send a test event">
      <label>Type<input name="type" list="event-types" defaultValue="hub.test" /></label>
      <datalist id="event-types">${['hub.test', 'appointment.created', 'appointment.cancelled', 'appointment.rescheduled'].map((t) => html`<option value=${t} />`)}</datalist>
      <div class="actions"><button type="submit" disabled=${action.busy || sub.kind !== 'webhook'}>Send test event</button></div>
    </form>
    ${sub.kind !== 'webhook' ? html`<p class="muted">Only webhook subscriptions can be sent a test event.</p>` : null}
    <${ActionStatus} action=${action} />
    ${
      answer &&
      html`<dl class="answer" data-test-answer>
        <div><dt>Result</dt><dd><${Badge} value=${answer.ok ? 'succeeded' : 'failed'} /></dd></div>
        <div><dt>Status</dt><dd>${answer.statusCode ?? '—'}</dd></div>
        <div><dt>Latency</dt><dd>${fmtMs(answer.latencyMs)}</dd></div>
        <div class="wide"><dt>Subscriber answered</dt><dd><code class="snippet">${answer.responseSnippet ?? answer.error ?? '(empty)'}</code></dd></div>
      </dl>`
    }
  </article>`;
}

function EditFilters({ sub, onSaved }) {
  const action = useAction();
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const eventTypes = list(f.get('eventTypes'));
    const sources = list(f.get('sources'));
    const body = {
      eventTypes: eventTypes.length ? eventTypes : ['*'],
      sources: sources.length ? sources : null,
    };
    const r = await action.run(
      () => api('PATCH', `/v1/subscriptions/${encodeURIComponent(sub.id)}`, body),
      'Filters saved.',
    );
    if (r) onSaved();
  }
  const fileManaged = sub.managedBy === 'file';
  return html`<article class="card" id="filters">
    <h2>Filters</h2>
    <form class="filters" onSubmit=${submit} aria-label="Edit filters">
      <label class="wide">Event types<input name="eventTypes" defaultValue=${sub.eventTypes.join(', ')} disabled=${fileManaged} /></label>
      <label class="wide">Sources<input name="sources" defaultValue=${sub.sources?.join(', ') ?? ''} placeholder="all instances" disabled=${fileManaged} /></label>
      <div class="actions"><button type="submit" disabled=${action.busy || fileManaged}>Save filters</button></div>
    </form>
    ${fileManaged ? html`<p class="muted">Declared in the configuration file: change it there.</p>` : null}
    <${ActionStatus} action=${action} />
  </article>`;
}

/** An integer or number as typed; text that is not one is sent as typed, for the API to refuse. */
const numberOr = (text) => (Number.isFinite(Number(text)) ? Number(text) : text);

/**
 * The delivery fields of a webhook, as `PATCH /v1/subscriptions/{id}` takes them; each maps the
 * form's text to the field's value (empty: null where the API takes null for "the hub's default").
 */
const DELIVERY_FIELDS = [
  ['url', 'URL', 'text', (t) => t.trim()],
  ['format', 'Format', ['cloudevents', 'fhir-r4', 'fhir-r4-notification'], (t) => t],
  ['contentType', 'Content type', ['application/cloudevents+json', 'application/json'], (t) => t],
  ['timeoutMs', 'Timeout per attempt, ms', 'number', (t) => numberOr(t.trim())],
  ['ordering', 'After a dead delivery', ['hold', 'release'], (t) => t],
  [
    'retryScheduleMs',
    "Retry schedule, ms (empty: the hub's)",
    'text',
    (t) => (list(t).length ? list(t).map(numberOr) : null),
  ],
  [
    'rateLimit',
    'At most, deliveries per second (empty: no limit)',
    'number',
    (t) => (t.trim() ? { perSecond: numberOr(t.trim()) } : null),
  ],
  [
    'disableAfterConsecutiveDead',
    "Disable after dead deliveries in a row (empty: the hub's)",
    'number',
    (t) => (t.trim() ? numberOr(t.trim()) : null),
  ],
];

/** What the form shows for a field's value. */
function shownValue(name, value) {
  if (value === null || value === undefined) return '';
  if (name === 'retryScheduleMs') return value.join(', ');
  if (name === 'rateLimit') return String(value.perSecond);
  return String(value);
}

/**
 * A webhook's destination and delivery (url, format, timeout, ordering, retries, rate, when to
 * disable it), changed with PATCH: only the fields changed are sent. The API checks them; its
 * refusal is shown at the fields its `errors` point at.
 */
function EditDelivery({ sub, onSaved }) {
  const action = useAction();
  const fileManaged = sub.managedBy === 'file';
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body = {};
    for (const [name, , , parse] of DELIVERY_FIELDS) {
      const value = parse(String(f.get(name) ?? ''));
      if (JSON.stringify(value) !== JSON.stringify(sub[name] ?? null)) body[name] = value;
    }
    const allow = f.get('allowPrivateAddresses') === 'on';
    if (allow !== sub.allowPrivateAddresses) body.allowPrivateAddresses = allow;
    if (Object.keys(body).length === 0) {
      action.run(async () => true, 'Nothing changed.');
      return;
    }
    const r = await action.run(
      () => api('PATCH', `/v1/subscriptions/${encodeURIComponent(sub.id)}`, body),
      'Delivery saved.',
    );
    if (r) onSaved();
  }
  const problem = action.error instanceof ApiError ? action.error.problem : undefined;
  const errors = fieldErrors(problem, [...DELIVERY_FIELDS.map(([n]) => `/${n}`), '/allowPrivateAddresses']);
  return html`<article class="card" id="delivery">
    <h2>Destination and delivery</h2>
    <form class="settings-form" onSubmit=${submit} noValidate aria-label="Edit delivery">
      ${DELIVERY_FIELDS.map(([name, label, kind]) => {
        const id = `sub-${name}`;
        const error = errors.byField[`/${name}`];
        const aria = described(id, '', error);
        return html`<${Field} id=${id} label=${label} error=${error}>${
          Array.isArray(kind)
            ? html`<select id=${id} name=${name} disabled=${fileManaged} ...${aria}>
                ${kind.map((o) => html`<option value=${o} selected=${sub[name] === o}>${o}</option>`)}</select>`
            : html`<input id=${id} name=${name} type="text" inputmode=${kind === 'number' ? 'numeric' : undefined}
                defaultValue=${shownValue(name, sub[name])} disabled=${fileManaged} spellcheck="false" ...${aria} />`
        }</${Field}>`;
      })}
      <label class="inline"><input type="checkbox" name="allowPrivateAddresses" checked=${sub.allowPrivateAddresses} disabled=${fileManaged} /> Allow private addresses</label>
      ${errors.rest.length > 0 ? html`<ul class="field-error">${errors.rest.map((r) => html`<li>${r}</li>`)}</ul>` : null}
      <div class="actions"><button type="submit" class="primary" disabled=${action.busy || fileManaged}>Save delivery</button></div>
    </form>
    ${fileManaged ? html`<p class="muted">Declared in the configuration file: change it there.</p>` : null}
    <${ActionStatus} action=${action} />
  </article>`;
}

export function SubscriptionView({ id }) {
  const state = useLoad(() => api('GET', `/v1/subscriptions/${encodeURIComponent(id)}`), [id]);
  const action = useAction();
  const [secret, setSecret] = useState();
  const [ask, setAsk] = useState(undefined);
  // Enabling can also send what the subscription missed (POST …/enable { replayMissed }); without
  // it the events stored while it was disabled are never sent to it.
  const [replayMissed, setReplayMissed] = useState(true);
  const base = `/v1/subscriptions/${encodeURIComponent(id)}`;
  const s = state.data;
  // The hub refuses to rotate secrets the file declares: the next start would put the file's back.
  const secretsFromFile = s?.managedBy === 'file' && s.secrets.some((x) => x.fromFile);
  async function act() {
    const what = ask;
    setAsk(undefined);
    if (what === 'rotate') {
      const r = await action.run(
        () => api('POST', `${base}/rotate-secret`, {}),
        'Secret rotated: the old one keeps signing during the overlap.',
      );
      if (r) setSecret(r.secret);
    } else if (what === 'disable') {
      await action.run(
        () => api('POST', `${base}/disable`, { reason: 'disabled from the dashboard' }),
        'Disabled.',
      );
    } else if (what === 'enable') {
      await action.run(
        () => api('POST', `${base}/enable`, { replayMissed }),
        (r) => (replayMissed ? `Enabled; ${r.replayed} missed deliveries sent again.` : 'Enabled.'),
      );
    }
    state.reload();
  }
  const asks = {
    rotate: [
      'Rotate the signing secret?',
      'A new secret is made and shown once. The current ones keep signing for a day.',
    ],
    disable: [
      'Disable this subscription?',
      'Nothing is delivered to it until it is enabled again. This stays as it is across restarts, also for a subscription declared in the configuration file.',
    ],
    enable: [
      'Enable this subscription?',
      html`<p>Deliveries start again.</p>
        <label class="inline"><input type="checkbox" name="replayMissed" checked=${replayMissed}
          onChange=${(e) => setReplayMissed(e.currentTarget.checked)} /> Also send what it missed: its dead deliveries and every matching event stored while it was disabled</label>`,
    ],
  };
  return html`<section>
    <div class="head"><h1>Subscription</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      s &&
      html`<p><${Badge} value=${s.disabledAt ? 'disabled' : 'enabled'} /> ${s.kind} · ${s.url ?? 'pull feed'} · format ${s.format} · content type ${s.contentType} · timeout ${fmtMs(s.timeoutMs)}
        ${s.disabledAt ? html` · disabled <${Time} value=${s.disabledAt} /> (${s.disabledReason ?? 'no reason'})` : ''}</p>
      ${
        s.managedBy === 'file'
          ? html`<p class="notice file-managed" id="file-managed">Declared in the configuration file: its destination, filters${
              secretsFromFile ? ' and signing secrets' : ''
            } change there (the next start applies the file again). Disable and enable stay as set here across restarts${
              secretsFromFile
                ? '.'
                : '; the file gives no secret, so the hub keeps the one it made and rotating it here sticks.'
            }</p>`
          : null
      }
      <div class="toolbar">
        ${s.disabledAt ? html`<button type="button" onClick=${() => setAsk('enable')}>Enable</button>` : html`<button type="button" onClick=${() => setAsk('disable')}>Disable</button>`}
        <button type="button" onClick=${() => setAsk('rotate')} disabled=${secretsFromFile}
          aria-describedby=${secretsFromFile ? 'rotate-why' : undefined}>Rotate secret</button>
        <a class="button" href=${link('deliveries', { subscriptionId: s.id })}>Deliveries</a>
        <a class="button" href=${link('deliveries', { subscriptionId: s.id, status: 'dead' })}>Dead letters</a>
        ${s.managedBy === 'api' ? html`<button type="button" class="danger" onClick=${() => setAsk('delete')}>Delete</button>` : null}
      </div>
      ${
        secretsFromFile
          ? html`<p class="muted small" id="rotate-why">The signing secrets are in the configuration file: to rotate, put the new secret first in its <code>secrets</code>, keep the old one until the subscriber has switched, and restart.</p>`
          : null
      }
      <${ActionStatus} action=${action} />
      ${secret ? html`<${OnceSecret} secret=${secret} />` : null}
      <div class="grid two">
        <${EditFilters} sub=${s} onSaved=${state.reload} key=${s.updatedAt} />
        ${s.kind === 'webhook' ? html`<${EditDelivery} sub=${s} onSaved=${state.reload} />` : null}
        <${TestEvent} sub=${s} />
        <article class="card"><h2>Signing secrets</h2>
          <ul class="plain">${s.secrets.map((x) => html`<li><code>${x.secretHint}</code> · ${x.fromFile ? 'from the configuration file, applied' : 'made'} <${Time} value=${x.createdAt} />${x.expiresAt ? html` · expires <${Time} value=${x.expiresAt} />` : ''}</li>`)}</ul>
        </article>
      </div>
      <${Confirm} open=${ask !== undefined && ask !== 'delete'} title=${asks[ask]?.[0] ?? ''} onConfirm=${act} onCancel=${() => setAsk(undefined)}>${asks[ask]?.[1] ?? ''}</${Confirm}>
      <${Confirm} open=${ask === 'delete'} title="Delete this subscription?" confirmLabel="Delete" onConfirm=${async () => {
        setAsk(undefined);
        const ok = await action.run(async () => {
          await api('DELETE', base);
          return true;
        }, 'Deleted.');
        if (ok) navigate('subscriptions');
      }} onCancel=${() => setAsk(undefined)}>Its deliveries and their history are deleted too.</${Confirm}>`
    }
  </section>`;
}
