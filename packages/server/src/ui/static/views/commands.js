// Commands: what downstream systems asked vendors to do, every vendor call and the outcome.

import { useState } from 'preact/hooks';
import {
  ActionStatus,
  api,
  Badge,
  Confirm,
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
const FIELDS = ['status', 'type', 'subject'];

/**
 * What a creating command without a subject yet (an `appointment.book`, a `slot.block`) makes, by
 * the entity its type names.
 */
function newEntity(type) {
  return type.startsWith('slot.') ? 'a new calendar block' : 'a new appointment';
}

/** The subject's link: an entity's commands sit beside its events, so it leads to those events. */
function SubjectLink({ subject, type }) {
  return subject
    ? html`<a href=${link('events', { subject })}>${subject}</a>`
    : html`<span class="muted">${newEntity(type)}</span>`;
}

function CommandRows({ items, showSubject }) {
  return items.map(
    (c) => html`<tr>
      <td><a href=${link(`commands/${c.id}`)}>${c.type}</a></td><td><${Badge} value=${c.status} /></td>
      <td>${c.attempts}</td>${showSubject ? html`<td class="clip"><${SubjectLink} subject=${c.subject} type=${c.type} /></td>` : null}
      <td><a href=${link(`instances/${c.instance}`)}>${c.instance}</a></td><td>${c.sentBy}</td>
      <td><${Time} value=${c.createdAt} /></td><td><code>${c.id.slice(0, 8)}</code></td></tr>`,
  );
}

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
  // A select applies at once; the text fields on Enter or "Filter" (two text fields: no implicit submit).
  const apply = (form) => {
    const f = new FormData(form);
    const next = {};
    for (const k of FIELDS) {
      const v = String(f.get(k) ?? '').trim();
      if (v) next[k] = v;
    }
    if (params.instanceId) next.instanceId = params.instanceId;
    navigate('commands', next);
  };
  return html`<section>
    <div class="head"><h1>Commands</h1></div>
    <form class="filters" role="search" aria-label="Filter commands" onSubmit=${(e) => {
      e.preventDefault();
      apply(e.currentTarget);
    }}>
      <label>Status<select name="status" value=${params.status ?? ''} onChange=${(e) => apply(e.currentTarget.form)}>
        <option value="">Any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
      <label>Type<input name="type" defaultValue=${params.type ?? ''} placeholder="appointment.cancel" /></label>
      <label class="wide">Subject<input name="subject" data-search defaultValue=${params.subject ?? ''} placeholder="appointment/…" /></label>
      <div class="actions"><button type="submit" class="primary">Filter</button>
        <a class="button" href="#/commands">Clear</a></div>
    </form>
    ${params.instanceId ? html`<p class="muted">On instance <a href=${link(`instances/${params.instanceId}`)}>${params.instanceId}</a> only.</p>` : null}
    <${Loading} state=${state} />
    ${
      state.data &&
      html`<table class="results" aria-label="Commands">
        <thead><tr><th>Type</th><th>Status</th><th>Attempts</th><th>Subject</th><th>Instance</th><th>Sent by</th><th>Accepted</th><th>Command</th></tr></thead>
        <tbody>${
          state.data.items.length === 0
            ? html`<tr><td colspan="8" class="muted">No commands match.</td></tr>`
            : html`<${CommandRows} items=${state.data.items} showSubject=${true} />`
        }</tbody>
      </table>
      <${Pager} pager=${pager} nextCursor=${state.data.nextCursor} />`
    }
  </section>`;
}

/**
 * The commands sent about one subject (an appointment), newest first: shown beside its events on
 * an event's page and on the events of that subject.
 */
export function SubjectCommands({ subject }) {
  const state = useLoad(() => api('GET', `/v1/commands${query({ subject, limit: 20 })}`), [subject], {
    everyMs: 5_000,
  });
  const page = state.data;
  return html`<article class="card" data-commands-of=${subject}>
    <div class="head"><h2>Commands (${page ? `${page.items.length}${page.nextCursor ? '+' : ''}` : '…'})</h2>
      <a href=${link('commands', { subject })}>All commands on this subject</a></div>
    <${Loading} state=${state} />
    ${
      page &&
      (page.items.length === 0
        ? html`<p class="muted">No command was sent about it through the hub.</p>`
        : html`<table class="results" aria-label="Commands on this subject">
          <thead><tr><th>Type</th><th>Status</th><th>Attempts</th><th>Instance</th><th>Sent by</th><th>Accepted</th><th>Command</th></tr></thead>
          <tbody><${CommandRows} items=${page.items} showSubject=${false} /></tbody>
        </table>`)
    }
  </article>`;
}

export function CommandView({ id }) {
  const state = useLoad(() => api('GET', `/v1/commands/${encodeURIComponent(id)}`), [id], { everyMs: 2_000 });
  const action = useAction();
  // Retry sends the command to the vendor again (a booking, a cancellation): asked first, as a replay is.
  const [asking, setAsking] = useState(false);
  const c = state.data;
  const finished = c && (c.status === 'succeeded' || c.status === 'failed');
  const retry = () =>
    action.run(async () => {
      setAsking(false);
      await api('POST', `/v1/commands/${encodeURIComponent(id)}/retry`);
      await state.reload();
    }, 'Queued again.');
  return html`<section>
    <div class="head"><h1>Command</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      c &&
      html`<p class="summary"><strong>${c.type}</strong> on <${SubjectLink} subject=${c.subject} type=${c.type} />${' '}at <a href=${link(`instances/${c.instance}`)}>${c.instance}</a>${' '}· sent by ${c.sentBy}${c.idempotencyKey ? html` (key <code>${c.idempotencyKey}</code>)` : ''}${' '}· accepted <${Time} value=${c.createdAt} />${' '}· <a href=${link('events', { subject: `command/${c.id}` })}>outcome events</a></p>
      <article class="card" data-status=${c.status}><h2>Outcome</h2>
        <p><${Badge} value=${c.status} /> after ${c.attempts} attempt${c.attempts === 1 ? '' : 's'}${
          c.nextAttemptAt && !finished ? html`${' '}· next attempt <${Time} value=${c.nextAttemptAt} />` : ''
        }${c.completedAt ? html`${' '}· finished <${Time} value=${c.completedAt} />` : ''}</p>
        ${c.result ? html`<${Json} value=${c.result} label="Result" />` : null}
        ${
          c.error
            ? html`<h3>${finished ? 'Error' : 'Last error'}${c.error.kind ? ` (${c.error.kind})` : ''}</h3>
              ${c.error.message ? html`<p class="error">${c.error.message}</p>` : null}
              <${Json} value=${c.error} label="Error" />`
            : null
        }
        ${
          c.status === 'failed'
            ? html`<p class="muted small">Retry runs the command again from the start${
                c.error?.kind === 'permanent'
                  ? ': the vendor refused it, so it fails again unless what the vendor refused has changed'
                  : ''
              }.</p>
              <button type="button" onClick=${() => setAsking(true)} disabled=${action.busy}>Retry…</button>
              <${Confirm} open=${asking} title="Send this command to the vendor again?" confirmLabel="Retry"
                onConfirm=${retry} onCancel=${() => setAsking(false)} busy=${action.busy}>
                <p>${c.type} on ${c.subject ?? newEntity(c.type)} at ${c.instance} runs again from the start: the vendor is called again.</p>
              </${Confirm}>`
            : null
        }
        <${ActionStatus} action=${action} />
      </article>
      <h2>Vendor calls (${c.calls.length})</h2>
      ${
        c.calls.length === 0
          ? html`<p class="muted">No vendor call yet.</p>`
          : html`<table class="attempts" aria-label="Vendor calls">
        <thead><tr><th>Run</th><th>Attempt</th><th>Call</th><th>HTTP</th><th>Latency</th><th>At</th><th>Response / error</th></tr></thead>
        <tbody>${c.calls.map(
          // A manual retry starts run 2 with attempt 1 again: the run tells its calls from the first run's.
          // A try the database failed is given back and the next one reuses its number: marked.
          (k) => html`<tr>
            <td data-label="Run">${k.run}</td><td data-label="Attempt">${k.attempt}${
              k.givenBack
                ? html` <span class="muted small" title="The hub's database failed this try: it spent none of the tries, and the next has the same number">given back</span>`
                : null
            }</td><td data-label="Call">${k.method}${' '}<code class="snippet">${k.url}</code></td>
            <td data-label="HTTP">${k.statusCode ?? '—'}</td><td data-label="Latency">${fmtMs(k.latencyMs)}</td>
            <td data-label="At"><${Time} value=${k.startedAt} /></td>
            <td data-label="Response / error" class="response"><code class="snippet">${k.responseSnippet ?? ''}</code>${k.error ? html` <span class="muted small">${k.error}</span>` : null}</td></tr>`,
        )}</tbody>
      </table>`
      }
      <details><summary>Command data</summary><${Json} value=${c.data} label="Command data" /></details>`
    }
  </section>`;
}
