// Deliveries and dead letters: filter, inspect attempts, replay one, all dead, or since a time.
import { useEffect, useState } from 'preact/hooks';
import {
  ActionStatus,
  api,
  Badge,
  Confirm,
  fmtMs,
  html,
  Loading,
  link,
  navigate,
  Pager,
  query,
  Time,
  useAction,
  useLoad,
  usePager,
} from '../lib.js';

/**
 * A disabled subscription's waiting deliveries are parked: due at this instant (deliveries/store.ts
 * PARKED_UNTIL), which is no time to show an operator. They are sent when it is enabled.
 */
const PARKED_UNTIL = '9999-12-31T00:00:00.000Z';
const isParked = (d) => d.status === 'pending' && d.nextAttemptAt >= PARKED_UNTIL;

/** When a waiting delivery goes next, or that it is parked until its subscription is enabled. */
function NextAttempt({ d }) {
  if (d.status !== 'pending') return null;
  return isParked(d)
    ? html`<p class="notice" data-next="parked"><${Badge} value="parked" tone="warn" /> Its subscription is disabled: it waits, and is sent when <a href=${link(`subscriptions/${d.subscriptionId}`)}>${d.subscriptionId}</a> is enabled.</p>`
    : html`<p class="muted" data-next="due">Next attempt <${Time} value=${d.nextAttemptAt} /> (or once the deliveries before it on its subject are done).</p>`;
}

const STATUSES = ['pending', 'in_flight', 'held', 'succeeded', 'dead', 'replayed', 'skipped'];
const STATUS_LABELS = { dead: 'dead (not replayed)', replayed: 'dead, since replayed' };

/**
 * The outcome filter → the admin API's query: "dead" means the dead letters still waiting; a dead
 * delivery that was replayed is "replayed" (its replay is listed under its own outcome).
 */
function statusQuery(status) {
  if (status === 'dead') return { status: 'dead', replayed: false };
  if (status === 'replayed') return { status: 'dead', replayed: true };
  return { status };
}

export function Attempts({ attempts }) {
  if (!attempts?.length) return html`<p class="muted">No attempt yet.</p>`;
  return html`<table class="attempts" aria-label="Attempts">
    <thead><tr><th>#</th><th>Started</th><th>Outcome</th><th>Status</th><th>Latency</th><th>Response / error</th></tr></thead>
    <tbody>${attempts.map(
      (a) => html`<tr>
        <td data-label="#">${a.attempt}</td><td data-label="Started"><${Time} value=${a.startedAt} /></td><td data-label="Outcome"><${Badge} value=${a.outcome} /></td>
        <td data-label="Status">${a.statusCode ?? '—'}</td><td data-label="Latency">${fmtMs(a.latencyMs)}</td>
        <td data-label="Response / error" class="response"><code class="snippet">${a.responseSnippet ?? ''}</code>${a.error ? html` <span class="muted small">${a.error}</span>` : null}${
          // With tracing on: the trace to open in the tracing backend (docs/observability.md).
          a.traceId ? html` <span class="muted small">trace <code>${a.traceId}</code></span>` : null
        }</td></tr>`,
    )}</tbody>
  </table>`;
}

/**
 * One delivery with every attempt, and a Replay button when it is finished. A delivery replayed
 * once is marked "replayed" with a link to its replay, and offers only "Send again anyway…": the
 * hub refuses a second replay unless it is forced, so a second click cannot resend by accident.
 */
export function DeliveryCard({ delivery: d, onChange }) {
  const action = useAction();
  const [confirm, setConfirm] = useState(false);
  const finished = d.status === 'dead' || d.status === 'succeeded' || d.status === 'skipped';
  const replayed = d.supersededBy !== null && d.supersededBy !== undefined;
  async function replay() {
    setConfirm(false);
    const fresh = await action.run(
      () => api('POST', `/v1/deliveries/${d.id}/replay`, replayed ? { force: true } : undefined),
      (r) => `Replay queued as delivery ${r.id.slice(0, 8)}.`,
    );
    if (fresh) onChange?.(fresh);
  }
  return html`<article class="card delivery" data-delivery=${d.id} data-status=${d.status} data-replayed=${replayed ? 'yes' : 'no'}>
    <div class="head">
      <h3><a href=${link(`deliveries/${d.id}`)}>Delivery ${d.id.slice(0, 8)}</a></h3>
      <${Badge} value=${d.status} />
      ${replayed ? html`<${Badge} value="replayed" tone="mute" />` : null}
      <span class="muted">to <a href=${link(`subscriptions/${d.subscriptionId}`)}>${d.subscriptionId}</a> · ${d.reason}${
        d.replayOf ? html` of <a href=${link(`deliveries/${d.replayOf}`)}>${d.replayOf.slice(0, 8)}</a>` : ''
      }${replayed ? html` · replayed as <a href=${link(`deliveries/${d.supersededBy}`)}>${d.supersededBy.slice(0, 8)}</a>` : ''}</span>
      ${
        finished
          ? html`<button type="button" onClick=${() => setConfirm(true)} disabled=${action.busy}>${replayed ? 'Send again anyway…' : 'Replay'}</button>`
          : null
      }
    </div>
    <${NextAttempt} d=${d} />
    <${Attempts} attempts=${d.attemptLog} />
    <${ActionStatus} action=${action} />
    <${Confirm} open=${confirm} title=${replayed ? 'Send this delivery again?' : 'Replay this delivery?'}
      confirmLabel=${replayed ? 'Send again' : 'Replay'} onConfirm=${replay} onCancel=${() => setConfirm(false)}>
      ${
        replayed
          ? html`It was already replayed as <strong>${d.supersededBy.slice(0, 8)}</strong>. The event is sent to <strong>${d.subscriptionId}</strong> once more, with the same webhook-id.`
          : html`The event is sent again to <strong>${d.subscriptionId}</strong> with the same webhook-id.`
      }
    </${Confirm}>
  </article>`;
}

export function DeliveryView({ id }) {
  const state = useLoad(() => api('GET', `/v1/deliveries/${encodeURIComponent(id)}`), [id], {
    everyMs: 3000,
  });
  const d = state.data;
  return html`<section>
    <div class="head"><h1>Delivery</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      d &&
      html`<p>Event <a href=${link(`events/${d.eventId}`)}>${d.eventId}</a> · subject ${d.subject} · created <${Time} value=${d.createdAt} /></p>
      <${DeliveryCard} delivery=${d} onChange=${(fresh) => navigate(`deliveries/${fresh.id}`)} />`
    }
  </section>`;
}

/** Follows the replay deliveries created after `after` until all are finished. */
function ReplayProgress({ subscriptionId, after, expected }) {
  const state = useLoad(
    () =>
      api(
        'GET',
        `/v1/dashboard/subscriptions/${encodeURIComponent(subscriptionId)}/replay-progress?after=${after}`,
      ),
    [subscriptionId, after],
    { everyMs: 1500 },
  );
  const p = state.data;
  const total = Math.max(expected, p?.total ?? 0);
  const done = p?.done ?? 0;
  return html`<div class="progress-box" aria-live="polite">
    <progress max=${total || 1} value=${total ? done : 1} aria-label="Replay progress"></progress>
    <span>${done} of ${total} replayed deliveries finished${p ? ` (${p.byStatus.succeeded} succeeded, ${p.byStatus.dead} dead)` : ''}</span>
  </div>`;
}

function BulkReplay({ subscriptionId, onDone }) {
  const action = useAction();
  const [ask, setAsk] = useState(undefined); // 'dead' | 'since'
  const [since, setSince] = useState('');
  const [progress, setProgress] = useState(undefined);
  useEffect(() => setProgress(undefined), [subscriptionId]);
  async function go() {
    const kind = ask;
    setAsk(undefined);
    const result = await action.run(
      async () => {
        const { position } = await api('GET', '/v1/dashboard/deliveries/position');
        const path = `/v1/subscriptions/${encodeURIComponent(subscriptionId)}`;
        const r =
          kind === 'dead'
            ? await api('POST', `${path}/replay-dead`)
            : await api('POST', `${path}/replay-since`, { since: new Date(since).toISOString() });
        return { ...r, position };
      },
      (r) => `${r.replayed} deliveries queued for replay.`,
    );
    if (result) {
      setProgress({ after: result.position, expected: result.replayed });
      onDone?.();
    }
  }
  return html`<div class="bulk">
    <button type="button" onClick=${() => setAsk('dead')} disabled=${action.busy}>Replay all dead…</button>
    <label class="inline">Since <input type="datetime-local" value=${since} onInput=${(e) => setSince(e.currentTarget.value)} /></label>
    <button type="button" onClick=${() => setAsk('since')} disabled=${action.busy || !since}>Replay since…</button>
    <${ActionStatus} action=${action} />
    ${progress ? html`<${ReplayProgress} subscriptionId=${subscriptionId} after=${progress.after} expected=${progress.expected} />` : null}
    <${Confirm} open=${ask !== undefined} title=${ask === 'dead' ? 'Replay every dead delivery?' : 'Replay every event since this time?'}
      confirmLabel="Replay" onConfirm=${go} onCancel=${() => setAsk(undefined)}>
      ${
        ask === 'dead'
          ? html`Every dead delivery of <strong>${subscriptionId}</strong> is sent again, oldest event first.`
          : html`Every event matching <strong>${subscriptionId}</strong> stored since <strong>${since && new Date(since).toLocaleString()}</strong> is sent again.`
      }
    </${Confirm}>
  </div>`;
}

export function DeliveriesView({ params }) {
  const key = JSON.stringify(params);
  const pager = usePager(key);
  const subs = useLoad(() => api('GET', '/v1/subscriptions'), []);
  const state = useLoad(
    () =>
      api(
        'GET',
        `/v1/deliveries${query({ subscriptionId: params.subscriptionId, ...statusQuery(params.status), cursor: pager.cursor, limit: 50 })}`,
      ),
    [key, pager.cursor],
  );
  function change(e) {
    const f = new FormData(e.currentTarget.form ?? e.currentTarget);
    navigate('deliveries', { subscriptionId: f.get('subscriptionId'), status: f.get('status') });
  }
  const page = state.data;
  return html`<section>
    <div class="head"><h1>Deliveries</h1></div>
    <form class="filters" onSubmit=${(e) => {
      e.preventDefault();
      change(e);
    }} aria-label="Filter deliveries">
      <label>Subscription<select name="subscriptionId" data-search onChange=${change} value=${params.subscriptionId ?? ''}>
        <option value="">All</option>
        ${(subs.data?.items ?? []).map((s) => html`<option value=${s.id}>${s.id}</option>`)}
      </select></label>
      <label>Outcome<select name="status" onChange=${change} value=${params.status ?? ''}>
        <option value="">Any</option>${STATUSES.map((s) => html`<option value=${s}>${STATUS_LABELS[s] ?? s}</option>`)}
      </select></label>
    </form>
    ${params.subscriptionId ? html`<${BulkReplay} subscriptionId=${params.subscriptionId} onDone=${state.reload} />` : html`<p class="muted">Pick a subscription to replay its dead deliveries or everything since a time.</p>`}
    <${Loading} state=${state} />
    ${
      page &&
      html`<table class="results" aria-label="Deliveries">
        <thead><tr><th>Delivery</th><th>Status</th><th>Subscription</th><th>Subject</th><th>Attempts</th><th>Last answer</th><th>Created</th></tr></thead>
        <tbody>${
          page.items.length === 0
            ? html`<tr><td colspan="7" class="muted">No deliveries match.</td></tr>`
            : page.items.map(
                (d) => html`<tr>
                  <td><a href=${link(`deliveries/${d.id}`)}>${d.id.slice(0, 8)}</a>${d.reason === 'replay' ? html` <span class="muted small">replay</span>` : ''}</td>
                  <td><${Badge} value=${d.status} />${isParked(d) ? html` <${Badge} value="parked" tone="warn" />` : null}${d.supersededBy ? html` <a class="badge mute" href=${link(`deliveries/${d.supersededBy}`)} title="Replayed as this delivery">replayed</a>` : null}</td>
                  <td>${d.subscriptionId}</td>
                  <td class="clip"><a href=${link(`events/${d.eventId}`)}>${d.subject}</a></td>
                  <td>${d.attempts}</td><td class="clip">${d.lastStatusCode ?? d.lastError ?? '—'}</td>
                  <td><${Time} value=${d.createdAt} /></td></tr>`,
              )
        }</tbody>
      </table>
      <${Pager} pager=${pager} nextCursor=${page.nextCursor} />`
    }
  </section>`;
}
