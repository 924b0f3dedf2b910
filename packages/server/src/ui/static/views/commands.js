// Commands: what downstream systems asked vendors to do, every vendor call and the outcome.
import {
  ActionStatus,
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
  useAction,
  useLoad,
  usePager,
} from '../lib.js';

const STATUSES = ['pending', 'running', 'succeeded', 'failed'];

export function CommandsView({ params }) {
  const key = JSON.stringify(params);
  const pager = usePager(key);
  const state = useLoad(
    () =>
      api(
        'GET',
        `/v1/commands${query({ status: params.status, type: params.type, instanceId: params.instanceId, subject: params.subject, cursor: pager.cursor, limit: 50 })}`,
      ),
    [key, pager.cursor],
    { everyMs: 5_000 },
  );
  const change = (e) => {
    const f = new FormData(e.currentTarget.form);
    navigate('commands', { status: f.get('status'), type: f.get('type'), subject: f.get('subject') });
  };
  return html`<section>
    <div class="head"><h1>Commands</h1></div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="Filter commands">
      <label>Status<select name="status" value=${params.status ?? ''} onChange=${change}>
        <option value="">Any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
      <label>Type<input name="type" defaultValue=${params.type ?? ''} onChange=${change} /></label>
      <label>Subject<input name="subject" data-search defaultValue=${params.subject ?? ''} onChange=${change} /></label>
    </form>
    <${Loading} state=${state} />
    ${
      state.data &&
      html`<table class="results" aria-label="Commands">
        <thead><tr><th>Command</th><th>Type</th><th>Status</th><th>Attempts</th><th>Target</th><th>Instance</th><th>Sent by</th><th>Accepted</th></tr></thead>
        <tbody>${
          state.data.items.length === 0
            ? html`<tr><td colspan="8" class="muted">No commands.</td></tr>`
            : state.data.items.map(
                (c) => html`<tr>
                  <td><a href=${link(`commands/${c.id}`)}>${c.id.slice(0, 8)}</a></td><td>${c.type}</td><td><${Badge} value=${c.status} /></td>
                  <td>${c.attempts}</td><td>${c.subject ?? '—'}</td><td><a href=${link(`instances/${c.instance}`)}>${c.instance}</a></td>
                  <td>${c.sentBy}</td><td><${Time} value=${c.createdAt} /></td></tr>`,
              )
        }</tbody>
      </table>
      <${Pager} pager=${pager} nextCursor=${state.data.nextCursor} />`
    }
  </section>`;
}

export function CommandView({ id }) {
  const state = useLoad(() => api('GET', `/v1/commands/${encodeURIComponent(id)}`), [id], { everyMs: 5_000 });
  const action = useAction();
  const c = state.data;
  const retry = () =>
    action.run(async () => {
      await api('POST', `/v1/commands/${encodeURIComponent(id)}/retry`);
      await state.reload();
    }, 'Queued again.');
  return html`<section>
    <div class="head"><h1>Command</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      c &&
      html`<p>${c.type} on ${c.subject ? html`<a href=${link('events', { subject: c.subject })}>${c.subject}</a>` : 'a new appointment'}
        at <a href=${link(`instances/${c.instance}`)}>${c.instance}</a> · sent by ${c.sentBy}${c.idempotencyKey ? ` (key ${c.idempotencyKey})` : ''}
        · accepted <${Time} value=${c.createdAt} /></p>
      <article class="card"><h2>Outcome</h2>
        <p><${Badge} value=${c.status} /> after ${c.attempts} attempt${c.attempts === 1 ? '' : 's'}
          ${c.nextAttemptAt ? html` · next attempt <${Time} value=${c.nextAttemptAt} />` : ''}</p>
        ${c.result ? html`<${Json} value=${c.result} label="Result" />` : null}
        ${c.error ? html`<${Json} value=${c.error} label="Error" />` : null}
        ${c.status === 'failed' ? html`<button type="button" onClick=${retry} disabled=${action.busy}>Retry</button>` : null}
        <${ActionStatus} action=${action} />
      </article>
      <h2>Vendor calls (${c.calls.length})</h2>
      <table class="results" aria-label="Vendor calls">
        <thead><tr><th>Attempt</th><th>Call</th><th>HTTP</th><th>Latency</th><th>Response / error</th><th>At</th></tr></thead>
        <tbody>${c.calls.map(
          (
            k,
          ) => html`<tr><td>${k.attempt}</td><td>${k.method} <code>${k.url}</code></td><td>${k.statusCode ?? '—'}</td>
            <td>${fmtMs(k.latencyMs)}</td><td><code class="snippet">${k.error ?? k.responseSnippet ?? ''}</code></td><td><${Time} value=${k.startedAt} /></td></tr>`,
        )}</tbody>
      </table>
      <details><summary>Command data</summary><${Json} value=${c.data} label="Command data" /></details>`
    }
  </section>`;
}
