// Editing a connector instance: its mode, pull interval, gate and settings, one field per property
// of its connector's settings schema (GET /v1/dashboard/connectors), saved with PUT /v1/instances/{id}.
// The form checks nothing itself: the API's schema does (the one the config file and the library
// are checked with), and its problem+json `errors` are shown beside the fields they point at.
// Secrets are never shown nor sent back: a stored one goes back as "[redacted]", which keeps it.
import { useState } from 'preact/hooks';
import {
  ActionStatus,
  ApiError,
  api,
  described,
  ErrorBox,
  Field,
  fieldErrors,
  html,
  Json,
  useAction,
  useLoad,
} from '../lib.js';

const REDACTED = '[redacted]';
const INTERVAL_HINT = "Empty: the connector's own interval.";
const DEADLINE_HINT = "Empty: the hub's default.";

const token = (name) => name.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * The form fields of a settings schema, in the schema's order: a property that is an object with
 * properties of its own (Docplanner's `pushAuth`) is a group of fields, so a secret inside it is a
 * secret field too; anything else without a field of its own (a list) is a JSON field.
 */
function settingsFields(schema, path = []) {
  const required = new Set(schema?.required ?? []);
  return Object.entries(schema?.properties ?? {}).map(([name, prop]) => {
    const at = [...path, name];
    const field = {
      name,
      path: at,
      id: `setting-${at.join('.')}`,
      pointer: `/settings/${at.map(token).join('/')}`,
      prop,
      required: required.has(name),
    };
    if (prop.type === 'object' && prop.properties && !prop['x-secret'])
      return { ...field, kind: 'group', children: settingsFields(prop, at) };
    const kind = prop['x-secret']
      ? 'secret'
      : Array.isArray(prop.enum)
        ? 'enum'
        : prop.type === 'boolean'
          ? 'boolean'
          : prop.type === 'integer' || prop.type === 'number'
            ? 'number'
            : prop.type === 'string'
              ? 'string'
              : 'json';
    return { ...field, kind };
  });
}

/** Every field of {@link settingsFields}, groups and what they hold, depth first. */
const allFields = (fields) =>
  fields.flatMap((f) => (f.kind === 'group' ? [f, ...allFields(f.children)] : [f]));

/** The value at `path` in `settings` (undefined when any step is missing). */
function valueAt(settings, path) {
  let v = settings;
  for (const k of path) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? v[k] : undefined;
  return v;
}

function hintOf(prop) {
  return [prop.description, prop.default !== undefined ? `Default: ${JSON.stringify(prop.default)}.` : '']
    .filter(Boolean)
    .join(' ');
}

/** A group's fields in a fieldset of their own; its error (a required field missing) above them. */
function SettingGroup({ field, settings, err }) {
  const hint = hintOf(field.prop);
  const error = err(field.pointer);
  return html`<fieldset class="group" data-field=${field.id}>
    <legend>${field.name}${field.required ? ' (required)' : ''}</legend>
    ${hint ? html`<small class="hint">${hint}</small>` : null}
    ${error ? html`<p class="field-error">${error}</p>` : null}
    ${field.children.map((child) => html`<${Setting} field=${child} settings=${settings} err=${err} />`)}
  </fieldset>`;
}

function Setting({ field, settings, err }) {
  if (field.kind === 'group') return html`<${SettingGroup} field=${field} settings=${settings} err=${err} />`;
  return html`<${SettingInput} field=${field} value=${valueAt(settings, field.path)} error=${err(field.pointer)} />`;
}

function SettingInput({ field, value, error }) {
  const { name, prop, kind, required, id } = field;
  const hint = hintOf(prop);
  const label = `${name}${required ? ' (required)' : ''}`;
  const aria = described(id, hint, error);
  if (kind === 'secret') {
    const stored = value === REDACTED;
    return html`<${Field} id=${id} label=${label} hint=${hint} error=${error}>
      <input id=${id} name=${`s:${id}`} type="password" autocomplete="new-password" data-secret-input
        placeholder=${stored ? 'stored: leave empty to keep it' : 'not set'} ...${aria} />
      ${
        stored && !required
          ? html`<label class="inline"><input type="checkbox" name=${`clear:${id}`} /> Remove the stored value</label>`
          : null
      }
    </${Field}>`;
  }
  if (kind === 'enum' || kind === 'boolean') {
    const options = kind === 'boolean' ? [true, false] : prop.enum;
    return html`<${Field} id=${id} label=${label} hint=${hint} error=${error}>
      <select id=${id} name=${`s:${id}`} ...${aria}>
        ${required && value !== undefined ? null : html`<option value="" selected=${value === undefined}>(not set)</option>`}
        ${options.map((o) => html`<option value=${JSON.stringify(o)} selected=${value === o}>${String(o)}</option>`)}
      </select>
    </${Field}>`;
  }
  if (kind === 'json') {
    return html`<${Field} id=${id} label=${`${label} (JSON)`} hint=${hint} error=${error}>
      <textarea id=${id} name=${`s:${id}`} rows="4" spellcheck="false" ...${aria}
        defaultValue=${value === undefined ? '' : JSON.stringify(value, null, 2)}></textarea>
    </${Field}>`;
  }
  return html`<${Field} id=${id} label=${label} hint=${hint} error=${error}>
    <input id=${id} name=${`s:${id}`} type="text" inputmode=${kind === 'number' ? 'numeric' : undefined}
      defaultValue=${value === undefined ? '' : String(value)} spellcheck="false" ...${aria} />
  </${Field}>`;
}

/**
 * The PUT body from the form: the instance's settings as shown (so a property the form has no
 * field for stays as it is), each field's value over it. A number field's text that is not a number
 * is sent as typed, for the API to refuse in its own words. A JSON field that does not parse is the
 * one thing refused here (there is nothing to send).
 */
function bodyOf(form, instance, connector, fields) {
  const f = new FormData(form);
  const settings = structuredClone(instance.settings);
  const syntax = {};
  // The object a field's value goes in (made when the settings have none yet), and its key.
  const slot = (path) => {
    let into = settings;
    for (const k of path.slice(0, -1)) {
      if (into[k] === null || typeof into[k] !== 'object' || Array.isArray(into[k])) into[k] = {};
      into = into[k];
    }
    return [into, path[path.length - 1]];
  };
  const leaves = allFields(fields).filter((x) => x.kind !== 'group');
  for (const field of leaves) {
    const raw = f.get(`s:${field.id}`);
    const text = typeof raw === 'string' ? raw : '';
    const [into, key] = slot(field.path);
    if (field.kind === 'secret') {
      // Empty keeps the stored secret ("[redacted]" as it came), unless asked to remove it.
      if (f.get(`clear:${field.id}`)) delete into[key];
      else if (text !== '') into[key] = text;
      continue;
    }
    if (text.trim() === '') {
      delete into[key];
      continue;
    }
    if (field.kind === 'enum' || field.kind === 'boolean') into[key] = JSON.parse(text);
    else if (field.kind === 'number') {
      const n = Number(text.trim());
      into[key] = Number.isFinite(n) ? n : text;
    } else if (field.kind === 'json') {
      try {
        into[key] = JSON.parse(text);
      } catch (error) {
        syntax[field.pointer] = `is not JSON: ${error.message}`;
      }
    } else into[key] = text;
  }
  // A group left with nothing in it is left out (innermost first), as it was before it had a value.
  for (const group of allFields(fields)
    .filter((x) => x.kind === 'group')
    .reverse()) {
    const [into, key] = slot(group.path);
    const v = into[key];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)
      delete into[key];
  }
  const mode = String(f.get('mode'));
  const body = { connector: instance.connector, mode, settings };
  if (mode !== 'push') {
    const interval = String(f.get('intervalMs') ?? '').trim();
    body.pull = {
      intervalMs: interval === '' ? null : Number.isFinite(Number(interval)) ? Number(interval) : interval,
    };
  }
  if (connector.gate) {
    const deadline = String(f.get('deadlineMs') ?? '').trim();
    const answer = String(f.get('gateDefault') ?? '');
    const gate = {
      ...(deadline !== ''
        ? { deadlineMs: Number.isFinite(Number(deadline)) ? Number(deadline) : deadline }
        : {}),
      ...(answer !== '' ? { default: answer } : {}),
    };
    if (Object.keys(gate).length > 0) body.gate = gate;
  }
  return { body, syntax };
}

function EditForm({ instance, connector, action, onSaved }) {
  const [errors, setErrors] = useState({ byField: {}, rest: [] });
  const [mode, setMode] = useState(instance.mode);
  const fields = settingsFields(connector.configSchema);
  const pointers = [
    '/mode',
    '/pull/intervalMs',
    '/pull',
    '/gate/deadlineMs',
    '/gate/default',
    '/gate',
    ...allFields(fields).map((x) => x.pointer),
  ];
  async function submit(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const { body, syntax } = bodyOf(form, instance, connector, fields);
    if (Object.keys(syntax).length > 0) {
      action.clear();
      setErrors({ byField: syntax, rest: [] });
      return;
    }
    setErrors({ byField: {}, rest: [] });
    const saved = await action.run(
      () => api('PUT', `/v1/instances/${encodeURIComponent(instance.id)}`, body),
      'Settings saved.',
    );
    if (saved) {
      // Typed secrets leave the page: the saved instance shows them as "[redacted]".
      for (const input of form.querySelectorAll('[data-secret-input]')) input.value = '';
      onSaved(saved);
    }
  }
  // The refusal's fields, once the action has one (cleared by the next submit).
  const problem = action.error instanceof ApiError ? action.error.problem : undefined;
  const shown = problem ? fieldErrors(problem, pointers) : errors;
  const err = (pointer) => shown.byField[pointer];
  const modes = ['push', 'pull', 'both'].filter(
    (m) =>
      (m === 'push' ? connector.push : m === 'pull' ? connector.pull : connector.push && connector.pull) ||
      m === instance.mode,
  );
  const gate = instance.gate ?? {};
  return html`<form class="settings-form" onSubmit=${submit} noValidate aria-label="Edit settings">
    <fieldset>
      <legend>How it receives</legend>
      <${Field} id="instance-mode" label="Mode" error=${err('/mode')}>
        <select id="instance-mode" name="mode" value=${mode} onChange=${(e) => setMode(e.currentTarget.value)}
          ...${described('instance-mode', '', err('/mode'))}>
          ${modes.map((m) => html`<option value=${m}>${m}</option>`)}
        </select>
      </${Field}>
      ${
        mode !== 'push'
          ? html`<${Field} id="instance-interval" label="Pull interval, ms" hint=${INTERVAL_HINT} error=${err('/pull/intervalMs') ?? err('/pull')}>
              <input id="instance-interval" name="intervalMs" type="text" inputmode="numeric"
                defaultValue=${instance.pull?.intervalMs ?? ''} ...${described('instance-interval', INTERVAL_HINT, err('/pull/intervalMs') ?? err('/pull'))} />
            </${Field}>`
          : null
      }
    </fieldset>
    ${
      connector.gate
        ? html`<fieldset>
            <legend>Approval gate</legend>
            <${Field} id="gate-deadline" label="Deadline, ms" hint=${DEADLINE_HINT} error=${err('/gate/deadlineMs') ?? err('/gate')}>
              <input id="gate-deadline" name="deadlineMs" type="text" inputmode="numeric" defaultValue=${gate.deadlineMs ?? ''}
                ...${described('gate-deadline', DEADLINE_HINT, err('/gate/deadlineMs') ?? err('/gate'))} />
            </${Field}>
            <${Field} id="gate-default" label="Answer when no approver decides" error=${err('/gate/default')}>
              <select id="gate-default" name="gateDefault" ...${described('gate-default', '', err('/gate/default'))}>
                <option value="" selected=${gate.default === undefined}>(the hub's default)</option>
                ${['approve', 'refuse'].map((a) => html`<option value=${a} selected=${gate.default === a}>${a}</option>`)}
              </select>
            </${Field}>
          </fieldset>`
        : null
    }
    <fieldset>
      <legend>${connector.displayName} settings</legend>
      ${fields.map((field) => html`<${Setting} field=${field} settings=${instance.settings} err=${err} />`)}
    </fieldset>
    ${shown.rest.length > 0 ? html`<ul class="field-error" data-unplaced>${shown.rest.map((r) => html`<li>${r}</li>`)}</ul>` : null}
    <div class="actions"><button type="submit" class="primary" disabled=${action.busy}>Save settings</button></div>
    <${ActionStatus} action=${action} />
  </form>`;
}

/**
 * The settings card of an instance page: the form for an API-managed instance, the settings as
 * they are (secrets redacted) and why they are not edited here for one the configuration file
 * declares (the API refuses those: SY_HTTP_FILE_MANAGED).
 */
export function InstanceSettings({ instance, onSaved }) {
  // Here, not in the form: the form is made again for the saved instance, and the message stays.
  const action = useAction();
  const connectors = useLoad(() => api('GET', '/v1/dashboard/connectors'), []);
  const connector = connectors.data?.items.find((c) => c.name === instance.connector);
  if (instance.managedBy === 'file')
    return html`<article class="card"><h2>Settings (secrets redacted)</h2>
      <p class="notice file-managed">Declared in the configuration file: its settings change there, and the next start applies them. The hub refuses changes to it through the API.</p>
      <${Json} value=${instance.settings} label="Settings" />
    </article>`;
  return html`<article class="card instance-settings"><h2>Settings</h2>
    <p class="muted small">Secrets are never shown: leave a secret empty to keep the stored one.</p>
    <${ErrorBox} error=${connectors.error} />
    ${
      connectors.data && !connector
        ? html`<p class="notice">This hub has no connector ${instance.connector}: its settings cannot be checked, so they are not edited here.</p>`
        : null
    }
    ${connector ? html`<${EditForm} instance=${instance} connector=${connector} action=${action} onSaved=${onSaved} key=${instance.updatedAt} />` : null}
  </article>`;
}
