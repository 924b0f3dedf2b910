/**
 * The tables of the commands subsystem (migration 13 in storage/migrations.ts; never edit it once
 * released: add a migration). Kept beside the subsystem's SQL (store.ts) so the two are read together.
 *
 * - `commands`: one row per accepted command. The row is the truth; a pg-boss job only says "look
 *   at command X now". `ordering_key` (the subject) orders commands of one entity: a command waits
 *   while an earlier one with the same key is `pending` or `running`.
 * - `command_calls`: every vendor call a handler made, per attempt (method, URL without query,
 *   status, latency, a snippet of the answer).
 * - `command_credentials`: per-subscription credentials for `POST /v1/commands` (SHA-256 of the
 *   token only; the token is shown once).
 */
export const COMMANDS_MIGRATION_SQL = `
create table switchyard.commands (
  seq bigserial not null unique,
  id uuid primary key,
  type text not null,
  instance_id text not null,
  connector text not null,
  subject text,
  ordering_key text,
  data jsonb not null,
  sent_by text not null,
  idempotency_key text,
  request_hash text not null,
  status text not null default 'pending' check (status in ('pending', 'running', 'succeeded', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  vendor_ids text[] not null default '{}',
  result jsonb,
  error jsonb,
  outcomes integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  unique (sent_by, idempotency_key)
);
-- the head-of-line check per entity, and the sweep of due or abandoned commands
create index commands_line_idx on switchyard.commands (ordering_key, seq) where status in ('pending', 'running');
create index commands_due_idx on switchyard.commands (next_attempt_at) where status in ('pending', 'running');
create index commands_list_idx on switchyard.commands (seq desc);
create index commands_subject_idx on switchyard.commands (subject, seq desc);
-- echo matching: recent successes per instance and entity
create index commands_echo_idx on switchyard.commands (instance_id, subject, completed_at) where status = 'succeeded';

create table switchyard.command_calls (
  id bigserial primary key,
  command_id uuid not null references switchyard.commands (id) on delete cascade,
  attempt integer not null,
  started_at timestamptz not null,
  method text not null,
  url text not null,
  status_code integer,
  latency_ms real,
  error text,
  response_snippet text
);
create index command_calls_command_idx on switchyard.command_calls (command_id, id);

create table switchyard.command_credentials (
  id text primary key,
  subscription_id text not null references switchyard.subscriptions (id) on delete cascade,
  token_hash text not null unique,
  hint text not null,
  created_at timestamptz not null default now()
);
`;
