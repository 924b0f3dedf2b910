// Connector instances: health, last message, failures, settings (edited in ./instance-settings.js),
// failed inbound messages and re-normalize.
import { useState } from 'preact/hooks';
import {
  ActionStatus,
  api,
  Badge,
  fmtMs,
  html,
  Json,
  Loading,
  link,
  Pager,
  query,
  Time,
  useAction,
  useLoad,
  usePager,
} from '../lib.js';
import { InstanceSettings } from './instance-settings.js';

export function InstancesView() {
  const state = useLoad(() => api('GET', '/v1/dashboard/overview?minutes=1'), [], { everyMs: 10_000 });
  return html`<section>
    <div class="head"><h1>Connector instances</h1></div>
    <${Loading} state=${state} />
    ${
      state.data &&
      html`<table class="results" aria-label="Connector instances">
        <thead><tr><th>Instance</th><th>Connector</th><th>Mode</th><th>Last message</th><th>Last error</th><th>Pull lag</th><th>Pull failures</th><th>Failed inbound</th></tr></thead>
        <tbody>${state.data.instances.map(
          (i) => html`<tr>
            <td><a href=${link(`instances/${i.id}`)}>${i.id}</a></td><td>${i.connector}</td><td>${i.mode}</td>
            <td><${Time} value=${i.lastMessageAt} /></td>
            <td class="clip">${i.lastError ? html`${i.lastError} · <${Time} value=${i.lastErrorAt} />` : '—'}</td>
            <td>${i.mode === 'push' ? '—' : fmtMs(i.pullLagMs)}</td>
            <td>${i.mode === 'push' ? '—' : i.pullConsecutiveFailures}</td>
            <td>${i.failedInbound > 0 ? html`<${Badge} value=${String(i.failedInbound)} tone="bad" />` : '0'}</td></tr>`,
        )}</tbody>
      </table>`
    }
  </section>`;
}

function Renormalize({ message, onDone }) {
  const action = useAction();
  const can = message.status === 'failed' || message.status === 'ignored';
  if (!can) return null;
  return html`<span>
    <button type="button" disabled=${action.busy} onClick=${async () => {
      const r = await action.run(
        () => api('POST', `/v1/inbound/${message.id}/renormalize`),
        'Queued for normalization again.',
      );
      if (r) onDone?.();
    }}>Re-normalize</button>
    <${ActionStatus} action=${action} />
  </span>`;
}

const STATUSES = ['failed', 'ignored', 'received', 'normalized'];

export function InstanceView({ id }) {
  const health = useLoad(() => api('GET', `/v1/instances/${encodeURIComponent(id)}/health`), [id], {
    everyMs: 10_000,
  });
  const inst = useLoad(() => api('GET', `/v1/instances/${encodeURIComponent(id)}`), [id]);
  const [status, setStatus] = useState('failed');
  const pager = usePager(`${id}/${status}`);
  const inbound = useLoad(
    () => api('GET', `/v1/inbound${query({ instanceId: id, status, cursor: pager.cursor, limit: 25 })}`),
    [id, status, pager.cursor],
  );
  const pullNow = useAction();
  const h = health.data;
  return html`<section>
    <div class="head"><h1>Connector instance</h1><code>${id}</code></div>
    <${Loading} state=${health} />
    ${
      h &&
      html`<div class="grid two">
        <article class="card"><h2>Health</h2>
          <dl class="answer">
            <div><dt>Last message</dt><dd><${Time} value=${h.lastMessageAt} /></dd></div>
            <div><dt>Received, last 24 h</dt><dd data-count="received-24h">${h.inbound.lastDay.received}</dd></div>
            <div><dt>Of those, failed now</dt><dd data-count="failed-24h">${h.inbound.lastDay.failed}</dd></div>
            <div><dt>Waiting to normalize</dt><dd>${h.inbound.received}</dd></div>
            <div><dt>Failed, any age</dt><dd>${h.inbound.failed}</dd></div>
            <div class="wide"><dt>Last error</dt><dd>${h.lastError ? html`${h.lastError} (<${Time} value=${h.lastErrorAt} />)` : '—'}</dd></div>
            ${
              h.pull &&
              html`<div><dt>Pull lag</dt><dd>${fmtMs(h.pull.lagMs)}</dd></div>
              <div><dt>Consecutive pull failures</dt><dd>${h.pull.consecutiveFailures}</dd></div>
              <div><dt>Last pull success</dt><dd><${Time} value=${h.pull.lastSuccessAt} /></dd></div>
              <div><dt>Next pull</dt><dd><${Time} value=${h.pull.nextAt} /></dd></div>`
            }
            ${
              h.reconcile &&
              html`<div><dt>Last reconciliation</dt><dd>${
                h.reconcile.lastRunAt
                  ? html`<${Time} value=${h.reconcile.lastRunAt} /> · ${h.reconcile.lastError ? `failed: ${h.reconcile.lastError}` : (h.reconcile.lastResult ?? 'done')}`
                  : 'never'
              }</dd></div>
              <div><dt>Next reconciliation</dt><dd>${h.reconcile.nextAt ? html`<${Time} value=${h.reconcile.nextAt} />` : 'at the next poller turn'}</dd></div>`
            }
          </dl>
          ${
            h.pull &&
            html`<button type="button" disabled=${pullNow.busy} onClick=${() =>
              pullNow.run(
                () => api('POST', `/v1/instances/${encodeURIComponent(id)}/pull`),
                (r) =>
                  r.error
                    ? `Pull failed: ${r.error}`
                    : `Pulled: ${r.stored} stored, ${r.duplicates} duplicates.`,
              )}>Pull now</button><${ActionStatus} action=${pullNow} />`
          }
        </article>
        ${inst.data ? html`<${InstanceSettings} instance=${inst.data} onSaved=${inst.reload} />` : html`<${Loading} state=${inst} />`}
      </div>`
    }
    <h2>Inbound messages</h2>
    <div class="filters">
      <label>Status<select value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
    </div>
    <${Loading} state=${inbound} />
    ${
      inbound.data &&
      html`<table class="results" aria-label="Inbound messages">
        <thead><tr><th>Message</th><th>Vendor type</th><th>Status</th><th>Error</th><th>Attempts</th><th>Received</th><th></th></tr></thead>
        <tbody>${
          inbound.data.items.length === 0
            ? html`<tr><td colspan="7" class="muted">No ${status} messages.</td></tr>`
            : inbound.data.items.map(
                (m) => html`<tr>
                  <td><a href=${link(`inbound/${m.id}`)}>${m.id.slice(0, 8)}</a></td><td>${m.vendorType}</td><td><${Badge} value=${m.status} /></td>
                  <td class="clip">${m.reason ?? (m.error ? JSON.stringify(m.error) : '—')}</td><td>${m.attempts}</td>
                  <td><${Time} value=${m.receivedAt} /></td><td><${Renormalize} message=${m} onDone=${inbound.reload} /></td></tr>`,
              )
        }</tbody>
      </table>
      <${Pager} pager=${pager} nextCursor=${inbound.data.nextCursor} />`
    }
  </section>`;
}

export function InboundView({ id }) {
  const state = useLoad(() => api('GET', `/v1/inbound/${encodeURIComponent(id)}`), [id], { everyMs: 5000 });
  const m = state.data;
  return html`<section>
    <div class="head"><h1>Inbound message</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      m &&
      html`<p>${m.vendorType} from <a href=${link(`instances/${m.instanceId}`)}>${m.instanceId}</a> by ${m.origin} · <${Badge} value=${m.status} />${' '}· received <${Time} value=${m.receivedAt} /> · ${m.attempts} attempts · <${Renormalize} message=${m} onDone=${state.reload} /></p>
      ${m.reason || m.error ? html`<article class="card"><h2>Why it ${m.status === 'ignored' ? 'was ignored' : 'failed'}</h2><p>${m.reason}</p>${m.error ? html`<${Json} value=${m.error} label="Error" />` : null}</article>` : null}
      <div class="grid two">
        <article class="card"><h2>Payload</h2><${Json} value=${m.payload} label="Payload" /></article>
        <article class="card"><h2>Headers (credentials redacted)</h2>${m.headers ? html`<${Json} value=${m.headers} label="Headers" />` : html`<p class="muted">Pulled: no headers.</p>`}</article>
      </div>
      <h2>Events it produced (${m.events.length})</h2>
      <ul class="plain">${m.events.map((e) => html`<li><a href=${link(`events/${e.id}`)}>${e.type}</a> · ${e.subject}</li>`)}</ul>`
    }
  </section>`;
}
