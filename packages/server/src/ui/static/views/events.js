// Events: search (type, source, subject, vendor id, time range) and one event with everything about it.
import { useState } from 'preact/hooks';
import { api, html, Json, Loading, link, navigate, Pager, query, Time, useLoad, usePager } from '../lib.js';
import { SubjectCommands } from './commands.js';
import { DeliveryCard } from './deliveries.js';

/** Subjects commands are sent about (a command's own outcome events have subject `command/<id>`). */
function commandable(subject) {
  return typeof subject === 'string' && subject.startsWith('appointment/');
}

/** An event's subject: a command's outcome links to its command, anything else to its events. */
function SubjectOf({ subject }) {
  if (typeof subject === 'string' && subject.startsWith('command/'))
    return html`<a href=${link(`commands/${subject.slice('command/'.length)}`)}>${subject}</a>`;
  return html`<a href=${link('events', { subject })}>${subject}</a>`;
}

/** `datetime-local` value (local time, no zone) → ISO instant; and back. */
export function localToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}
function isoToLocal(v) {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const FIELDS = ['vendorId', 'type', 'source', 'subject', 'since', 'until'];

// The time range is when the hub stored the event (what `since`/`until` of GET /v1/events read,
// served by its index), not the vendor's time in the Happened column: a pulled, late or backfilled
// event stored today that happened last week is found under today. Labelled so, since "From" above
// a column of vendor times read as a filter on those (an audit).
const STORED_TIP = 'When the hub stored the event, not the vendor time in the Happened column';
const HAPPENED_TIP =
  "The vendor's time of the event; the Stored from/until filters read when the hub stored it";

function SearchForm({ params }) {
  function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const next = {};
    for (const k of FIELDS) {
      const v = String(f.get(k) ?? '').trim();
      if (v) next[k] = k === 'since' || k === 'until' ? localToIso(v) : v;
    }
    navigate('events', next);
  }
  return html`<form class="filters" onSubmit=${submit} role="search" aria-label="Search events">
    <label>Vendor id<input name="vendorId" data-search defaultValue=${params.vendorId ?? ''} placeholder="e.g. 4711" /></label>
    <label>Type<input name="type" defaultValue=${params.type ?? ''} placeholder="appointment.* or exact" /></label>
    <label>Source instance<input name="source" defaultValue=${params.source ?? ''} /></label>
    <label>Subject<input name="subject" defaultValue=${params.subject ?? ''} placeholder="appointment/…" /></label>
    <label title=${STORED_TIP}>Stored from<input type="datetime-local" name="since" defaultValue=${isoToLocal(params.since)} /></label>
    <label title=${STORED_TIP}>Stored until<input type="datetime-local" name="until" defaultValue=${isoToLocal(params.until)} /></label>
    <div class="actions"><button type="submit" class="primary">Search</button>
      <a class="button" href="#/events">Clear</a></div>
  </form>`;
}

export function EventsView({ params }) {
  const key = JSON.stringify(params);
  const pager = usePager(key);
  const state = useLoad(() => {
    const common = {
      type: params.type,
      source: params.source,
      since: params.since,
      until: params.until,
      cursor: pager.cursor,
      limit: 50,
    };
    if (params.vendorId) {
      // The admin API has no vendor-id search: the dashboard route resolves it through the alias table.
      return api('GET', `/v1/dashboard/events${query({ ...common, vendorId: params.vendorId })}`);
    }
    return api('GET', `/v1/events${query({ ...common, subject: params.subject })}`);
  }, [key, pager.cursor]);
  const page = state.data;
  return html`<section>
    <div class="head"><h1>Events</h1></div>
    <${SearchForm} params=${params} key=${key} />
    <${Loading} state=${state} />
    ${
      page &&
      html`${
        params.vendorId && page.subjects
          ? html`<p class="muted">Vendor id <code>${params.vendorId}</code> is known as ${
              page.subjects.length ? page.subjects.map((s) => html`<code>${s}</code> `) : 'nothing yet'
            }</p>`
          : null
      }
      ${params.subject && !params.vendorId && commandable(params.subject) ? html`<${SubjectCommands} subject=${params.subject} />` : null}
      ${
        page.items.length === 0
          ? // Beside the table, not in a row of it: on a phone a table row is one line in a box that
            // scrolls sideways, and the end of the sentence (what Older does) was off screen.
            html`<p class="muted" role="status" data-empty>${
              page.nextCursor
                ? 'No events match among the 10,000 this page looked at: Older → looks further back.'
                : // Past the first page the newer pages may have held matches (exactly a page of them).
                  pager.page > 1
                  ? 'No older events match.'
                  : 'No events match.'
            }</p>`
          : html`<table class="results" aria-label="Events">
        <thead><tr><th>#</th><th>Type</th><th>Source</th><th>Subject</th><th>Vendor type</th><th title=${HAPPENED_TIP}>Happened</th></tr></thead>
        <tbody>${page.items.map(
          (e) => html`<tr>
                  <td><a href=${link(`events/${e.id}`)} tabindex="-1" aria-hidden="true">${BigInt(e.sequence).toString()}</a></td>
                  <td><a href=${link(`events/${e.id}`)}>${e.type}</a></td><td>${e.source}</td><td class="clip">${e.subject}</td><td>${e.vendortype}</td>
                  <td><${Time} value=${e.time} /></td></tr>`,
        )}</tbody>
      </table>`
      }
      <${Pager} pager=${pager} nextCursor=${page.nextCursor} />`
    }
  </section>`;
}

function InboundSummary({ eventId }) {
  const state = useLoad(async () => {
    const { inboundMessageId } = await api(
      'GET',
      `/v1/dashboard/events/${encodeURIComponent(eventId)}/inbound`,
    );
    return inboundMessageId ? api('GET', `/v1/inbound/${inboundMessageId}`) : null;
  }, [eventId]);
  const m = state.data;
  return html`<details class="card inbound">
    <summary><h2>Inbound vendor message</h2></summary>
    <${Loading} state=${state} />
    ${state.data === null ? html`<p class="muted">Not recorded.</p>` : null}
    ${
      m &&
      html`<p><a href=${link(`inbound/${m.id}`)}>${m.vendorType}</a> from <a href=${link(`instances/${m.instanceId}`)}>${m.instanceId}</a>${' '}by ${m.origin} · received <${Time} value=${m.receivedAt} /> · dedupe key <code>${m.dedupeKey}</code></p>
      ${m.headers ? html`<details><summary>Headers (credentials redacted)</summary><${Json} value=${m.headers} label="Headers" /></details>` : null}
      <${Json} value=${m.payload} label="Vendor payload" />`
    }
  </details>`;
}

export function EventView({ id }) {
  const [tick, setTick] = useState(0);
  const state = useLoad(() => api('GET', `/v1/events/${encodeURIComponent(id)}`), [id, tick], {
    everyMs: 4000,
  });
  const d = state.data;
  return html`<section>
    <div class="head"><h1>Event</h1><code>${id}</code></div>
    <${Loading} state=${state} />
    ${
      d &&
      html`<p class="summary"><strong>${d.event.type}</strong> about <${SubjectOf} subject=${d.event.subject} />${' '}from <a href=${link('events', { source: d.event.source })}>${d.event.source}</a> · happened <${Time} value=${d.event.time} /></p>
      <h2>Deliveries (${d.deliveries.length})</h2>
      ${d.deliveries.length === 0 ? html`<p class="muted">No subscription matched this event.</p>` : null}
      ${d.deliveries.map((del) => html`<${DeliveryCard} delivery=${del} onChange=${() => setTick((t) => t + 1)} />`)}
      ${commandable(d.event.subject) ? html`<${SubjectCommands} subject=${d.event.subject} />` : null}
      <div class="grid two">
        <details class="card"><summary><h2>Normalized event</h2></summary><${Json} value=${d.event} label="Normalized event" /></details>
        <${InboundSummary} eventId=${id} />
      </div>`
    }
  </section>`;
}
