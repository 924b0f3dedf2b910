// Gates: each approval request with every approver's answer and the decision.
import {
  ApiError,
  api,
  Badge,
  fmtMs,
  html,
  Json,
  Loading,
  link,
  navigate,
  Pager,
  query,
  Time,
  useLoad,
  usePager,
} from '../lib.js';

/**
 * Why a request got its answer (`GET /v1/gates?reason=`): "approvals seem slow" is answered by the
 * ones given the instance's default at the deadline.
 */
const REASONS = [
  ['approved', 'approved by an approver'],
  ['refused', 'refused by an approver'],
  ['deadline', 'default at the deadline'],
  ['no_approvers', 'default: no approvers'],
  ['unavailable', 'default: approvers unavailable'],
  ['error', 'default: an error'],
  ['abandoned', 'default: abandoned'],
];

function notEnabled(state) {
  return (
    state.error instanceof ApiError &&
    state.error.status === 404 &&
    state.error.problem?.code === 'SY_HTTP_NOT_FOUND'
  );
}

export function GatesView({ params }) {
  const key = JSON.stringify(params);
  const pager = usePager(key);
  const state = useLoad(
    () =>
      api(
        'GET',
        `/v1/gates${query({ decision: params.decision, reason: params.reason, instanceId: params.instanceId, cursor: pager.cursor, limit: 50 })}`,
      ),
    [key, pager.cursor],
    { everyMs: 10_000 },
  );
  const change = (e) => {
    const f = new FormData(e.currentTarget.form);
    navigate('gates', {
      decision: f.get('decision'),
      reason: f.get('reason'),
      instanceId: f.get('instanceId'),
    });
  };
  return html`<section>
    <div class="head"><h1>Gates</h1></div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Filter gate requests">
      <label>Decision<select name="decision" value=${params.decision ?? ''} onChange=${change}>
        <option value="">Any</option><option value="approve">approve</option><option value="refuse">refuse</option></select></label>
      <label>Why<select name="reason" value=${params.reason ?? ''} onChange=${change}>
        <option value="">Any</option>${REASONS.map(([v, label]) => html`<option value=${v}>${label}</option>`)}</select></label>
      <label>Instance<input name="instanceId" data-search defaultValue=${params.instanceId ?? ''} onChange=${change} /></label>
    </form>
    ${notEnabled(state) ? html`<p class="muted">This hub process does not serve gate requests.</p>` : html`<${Loading} state=${state} />`}
    ${
      state.data &&
      html`<table class="results" aria-label="Gate requests">
        <thead><tr><th>Request</th><th>Instance</th><th>Vendor type</th><th>Decision</th><th>Why</th><th>Approvers</th><th>Took</th><th>Booking</th><th>Received</th></tr></thead>
        <tbody>${
          state.data.items.length === 0
            ? html`<tr><td colspan="9" class="muted">No approval requests.</td></tr>`
            : state.data.items.map(
                (g) => html`<tr>
                  <td><a href=${link(`gates/${g.id}`)}>${g.id.slice(0, 12)}</a></td><td>${g.instanceId}</td><td>${g.vendorType}</td>
                  <td><${Badge} value=${g.decision ?? g.status} /></td><td>${g.reason ?? '—'}${g.refusalReason ? `: ${g.refusalReason}` : ''}</td>
                  <td>${g.approvers}</td><td>${fmtMs(g.decisionMs)}</td><td>${g.booking.status}</td><td><${Time} value=${g.receivedAt} /></td></tr>`,
              )
        }</tbody>
      </table>
      <${Pager} pager=${pager} nextCursor=${state.data.nextCursor} />`
    }
  </section>`;
}

export function GateView({ id }) {
  const state = useLoad(() => api('GET', `/v1/gates/${encodeURIComponent(id)}`), [id]);
  const g = state.data;
  return html`<section>
    <div class="head"><h1>Gate request</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      g &&
      html`<p>${g.vendorType} at <a href=${link(`instances/${g.instanceId}`)}>${g.instanceId}</a> · received <${Time} value=${g.receivedAt} />${' '}· deadline ${fmtMs(g.deadlineMs)} (default ${g.default})</p>
      <article class="card"><h2>Decision</h2>
        <p><${Badge} value=${g.decision ?? g.status} /> ${g.reason ?? ''} ${g.decidedBy ? html`by <a href=${link(`subscriptions/${g.decidedBy}`)}>${g.decidedBy}</a>` : ''}
          ${g.refusalReason ? html` — “${g.refusalReason}”` : ''} · took ${fmtMs(g.decisionMs)} · vendor answered ${g.responseStatus ?? '—'}</p>
        <p>Booking: ${g.booking.status}${g.booking.eventId ? html` · <a href=${link(`events/${g.booking.eventId}`)}>event</a>` : ''}</p>
        ${g.error ? html`<div class="error">${g.error}</div>` : null}
      </article>
      <h2>Approvers' answers (${g.answers.length})</h2>
      <table class="results" aria-label="Approver answers">
        <thead><tr><th>Approver</th><th>Answer</th><th>Why</th><th>HTTP</th><th>Latency</th><th>Response / error</th><th>After decision</th></tr></thead>
        <tbody>${g.answers.map(
          (
            a,
          ) => html`<tr><td><a href=${link(`subscriptions/${a.subscriptionId}`)}>${a.subscriptionId}</a></td><td><${Badge} value=${a.outcome} /></td>
            <td>${a.reason ?? '—'}</td><td>${a.statusCode ?? '—'}</td><td>${fmtMs(a.latencyMs)}</td>
            <td><code class="snippet">${a.error ?? a.responseSnippet ?? ''}</code></td><td>${a.afterDecision ? 'yes' : 'no'}</td></tr>`,
        )}</tbody>
      </table>
      <details><summary>Approval request sent</summary><${Json} value=${g.request} label="Approval request" /></details>`
    }
  </section>`;
}
