// Overview: what the hub is doing now, refreshed every few seconds.
import { api, Badge, fmtMs, html, Loading, link, Time, useLoad } from '../lib.js';

const REFRESH_MS = 5000;

function Sparkline({ points }) {
  const max = Math.max(1, ...points.map((p) => p.count));
  const w = 600;
  const hgt = 80;
  const step = w / Math.max(1, points.length);
  const total = points.reduce((a, p) => a + p.count, 0);
  const last = points[points.length - 1]?.count ?? 0;
  return html`<figure class="spark">
    <svg viewBox=${`0 0 ${w} ${hgt}`} role="img" aria-label=${`Events per minute, last ${points.length} minutes: ${total} in all, ${last} this minute`} preserveAspectRatio="none">
      ${points.map((p, i) => {
        const bh = (p.count / max) * (hgt - 4);
        return html`<rect x=${i * step + 1} y=${hgt - bh} width=${Math.max(1, step - 2)} height=${bh}><title>${p.minute}: ${p.count}</title></rect>`;
      })}
    </svg>
    <figcaption><strong>${last}</strong> this minute · ${total} in the last ${points.length} min · peak ${max}/min</figcaption>
  </figure>`;
}

function Counts({ counts, caption }) {
  return html`<dl class="counts" aria-label=${caption}>
    ${Object.entries(counts).map(
      ([k, v]) => html`<div><dt><${Badge} value=${k} /></dt><dd>
        <a href=${link('deliveries', { status: k })}>${v.toLocaleString()}</a></dd></div>`,
    )}
  </dl>`;
}

/**
 * What this process met that the database's rows cannot show: its latest database outage (over
 * once a minute has passed without one), a pull spool that refuses (no pull fetches) and pulled
 * notifications lost.
 */
function ProcessHealth({ p, at }) {
  const outage = p.databaseOutage;
  const ongoing = outage && new Date(at).getTime() - new Date(outage.lastAt).getTime() < 60_000;
  const problems = [];
  if (outage)
    // One line of template: htm drops whitespace that holds a line break, so words would run together.
    problems.push(
      html`<li data-health="database" class=${ongoing ? 'bad' : ''}>${ongoing ? 'The database is unavailable' : 'The database was unavailable'}${outage.condition ? ` (${outage.condition})` : ''}: from <${Time} value=${outage.firstAt} /> to <${Time} value=${outage.lastAt} /> (${fmtMs(new Date(outage.lastAt) - new Date(outage.firstAt))}), ${outage.occurrences.toLocaleString()} operation${outage.occurrences === 1 ? '' : 's'} refused or retried${ongoing ? ' (met in the last minute)' : ''}.</li>`,
    );
  if (p.pullSpoolRefused)
    problems.push(
      html`<li data-health="spool" class="bad">The pull spool (<code>workers.pullSpoolDir</code>) refuses its check: no pull of this process fetches anything (a full or read-only disk).</li>`,
    );
  for (const st of p.stalledDeliveryRequests)
    problems.push(
      html`<li data-health="stalled" class="bad">Subscriber <a href=${link(`subscriptions/${st.subscriptionId}`)}>${st.subscriptionId}</a> not answering: ${st.requests} request${st.requests === 1 ? '' : 's'} unanswered for over 2 s; its deliveries wait until it answers or times out.</li>`,
    );
  if (p.pulledNotificationsLost > 0)
    problems.push(
      html`<li data-health="lost" class="bad">${p.pulledNotificationsLost} pulled notifications lost by this process (see its error log).</li>`,
    );
  return html`<article class="card wide" aria-label="This hub process">
    <h2>This process</h2>
    ${
      problems.length === 0
        ? html`<p class="muted">No database outage since it started; pull spool writable.</p>`
        : html`<ul class="plain">${problems}</ul>`
    }
    <p class="muted small">Kept in the memory of the process that answered (a restart forgets it; another replica has its own).</p>
  </article>`;
}

export function OverviewView() {
  const state = useLoad(() => api('GET', '/v1/dashboard/overview?minutes=60'), [], { everyMs: REFRESH_MS });
  const o = state.data;
  return html`<section>
    <div class="head">
      <h1>Overview</h1>
      <span class="muted" aria-live="off">${o ? html`updated <${Time} value=${o.generatedAt} />` : ''} · refreshes every ${REFRESH_MS / 1000} s</span>
    </div>
    <${Loading} state=${state} />
    ${
      o &&
      html`<div class="grid">
        <${ProcessHealth} p=${o.process} at=${o.generatedAt} />
        <article class="card wide">
          <h2>Events per minute</h2>
          <${Sparkline} points=${o.eventsPerMinute} />
          <p class="muted">Backlog: ${o.backlog.normalize} to normalize · ${o.backlog.deliver} to deliver</p>
        </article>
        <article class="card">
          <h2>Deliveries by outcome</h2>
          <${Counts} counts=${o.deliveries.byStatus} caption="Open and dead deliveries by status" />
          <h3>Finished in the last hour</h3>
          <${Counts} counts=${o.deliveries.completedLastHour} caption="Deliveries finished in the last hour" />
        </article>
        <article class="card">
          <h2>Disabled endpoints</h2>
          ${
            o.disabledSubscriptions.length === 0
              ? html`<p class="muted">None.</p>`
              : html`<ul class="plain">${o.disabledSubscriptions.map(
                  (
                    s,
                  ) => html`<li><a href=${link(`subscriptions/${s.id}`)}>${s.id}</a> <${Badge} value="disabled" />
                    <div class="muted small">${s.disabledReason || 'no reason given'} · <${Time} value=${s.disabledAt} /></div></li>`,
                )}</ul>`
          }
        </article>
        <article class="card wide">
          <h2>Dead deliveries</h2>
          ${
            o.dead.length === 0
              ? html`<p class="muted">None waiting.</p>`
              : html`<table><thead><tr><th>Delivery</th><th>Subscription</th><th>Subject</th><th>Attempts</th><th>Last answer</th><th>Died</th></tr></thead>
                <tbody>${o.dead.map(
                  (d) => html`<tr>
                    <td><a href=${link(`deliveries/${d.id}`)}>${d.id.slice(0, 8)}</a></td>
                    <td><a href=${link('deliveries', { subscriptionId: d.subscriptionId, status: 'dead' })}>${d.subscriptionId}</a></td>
                    <td><a href=${link(`events/${d.eventId}`)}>${d.subject}</a></td>
                    <td>${d.attempts}</td>
                    <td>${d.lastStatusCode ?? d.lastError ?? '—'}</td>
                    <td><${Time} value=${d.completedAt} /></td></tr>`,
                )}</tbody></table>`
          }
        </article>
        <article class="card wide">
          <h2>Connector instances</h2>
          <table><thead><tr><th>Instance</th><th>Connector</th><th>Mode</th><th>Last message</th><th>Pull lag</th><th>Pull failures</th><th>Failed inbound</th><th>Last error</th></tr></thead>
          <tbody>${o.instances.map(
            (i) => html`<tr>
              <td><a href=${link(`instances/${i.id}`)}>${i.id}</a></td><td>${i.connector}</td><td>${i.mode}</td>
              <td><${Time} value=${i.lastMessageAt} /></td>
              <td>${i.mode === 'push' ? '—' : fmtMs(i.pullLagMs)}</td>
              <td>${i.mode === 'push' ? '—' : i.pullConsecutiveFailures}</td>
              <td>${i.failedInbound > 0 ? html`<a class="bad" href=${link(`instances/${i.id}`)}>${i.failedInbound}</a>` : '0'}</td>
              <td class="clip">${i.lastError ?? '—'}</td></tr>`,
          )}</tbody></table>
        </article>
        <article class="card wide">
          <h2>Recent gate decisions</h2>
          ${
            o.gates.length === 0
              ? html`<p class="muted">No approval requests yet.</p>`
              : html`<table><thead><tr><th>Request</th><th>Instance</th><th>Vendor type</th><th>Decision</th><th>Why</th><th>Took</th><th>Received</th></tr></thead>
                <tbody>${o.gates.map(
                  (
                    g,
                  ) => html`<tr><td><a href=${link(`gates/${g.id}`)}>${g.id.slice(0, 12)}</a></td><td>${g.instanceId}</td><td>${g.vendorType}</td>
                    <td><${Badge} value=${g.decision ?? g.status} /></td><td>${g.reason ?? '—'}</td><td>${fmtMs(g.decisionMs)}</td>
                    <td><${Time} value=${g.receivedAt} /></td></tr>`,
                )}</tbody></table>`
          }
        </article>
      </div>`
    }
  </section>`;
}
