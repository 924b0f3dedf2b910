// biome-ignore-all lint/suspicious/noTemplateCurlyInString: secret references are written ${env:...} on purpose.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@switchyard/testing/postgres';
import { describe, expect, it } from 'vitest';
import { checkNodeVersion, stripsTypes } from '../../bin/node-guard.mjs';
import { shippedConnectors } from '../connectors.ts';
import type { CliIO, Command } from './command.ts';
import { commands } from './commands/index.ts';
import { main } from './main.ts';

const bin = fileURLToPath(new URL('../../bin/switchyard.mjs', import.meta.url));
const example = fileURLToPath(new URL('../../../../examples/switchyard.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));

function run(args: string[], env: Record<string, string> = {}) {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...inherited, ...env },
    cwd: dir,
    // Node's compile-cache debug output (NODE_DEBUG_NATIVE=COMPILE_CACHE, a line or more per module
    // and long paths) passes spawnSync's default 1 MB, which kills the child.
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr, all: child.stdout + child.stderr };
}

function memoryIO(env: Record<string, string> = {}): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env,
    cwd: dir,
    out: () => out,
    err: () => err,
  };
}

describe('switchyard validate (child process)', () => {
  it('exits 0 with a summary on the example', () => {
    const result = run(['validate', '--config', example]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('is valid.');
    expect(result.stdout).toMatch(/instances: docplanner-main \(docplanner, push\)/);
  });

  it('prints file:line:column problems and exits 1', () => {
    writeFileSync(
      join(dir, 'broken.yaml'),
      [
        'version: 1',
        'instances:',
        '  - id: main',
        '    connector: docplaner',
        'subscriptions:',
        '  - id: crm',
        '    kind: webhook',
        '',
      ].join('\n'),
    );
    const result = run(['validate', '--config', 'broken.yaml']);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      // The known list is the registry's (packages/server/src/connectors.ts), never a copy of it.
      `broken.yaml:4:16 instances[0].connector: unknown connector "docplaner"; known: ${shippedConnectors.map((c) => c.name).join(', ')}; did you mean "docplanner"?`,
    );
    expect(result.stdout).toContain(
      'broken.yaml:6:5 subscriptions[0].url: a webhook subscription needs a url',
    );
    expect(result.stderr).toBe('broken.yaml: 2 problems\n');
    expect(result.all).not.toMatch(/\n\s+at /);
  });

  it('never prints a secret value, with or without problems', () => {
    const secrets = {
      HUB_ADMIN: 'Admin-Token-Value-0001',
      DP_KEY: 'short',
      SIGNING: 'Not-A-Webhook-Secret-Value-0002',
      DB_PASS: 'Database-Password-0003',
    };
    writeFileSync(
      join(dir, 'secrets.yaml'),
      [
        'version: 1',
        'server:',
        '  adminToken: ${env:HUB_ADMIN}',
        'database:',
        '  url: postgres://hub:${env:DB_PASS}@db/hub',
        'secretKey: Literal-Secret-Key-Value-0004',
        'instances:',
        '  - id: dp',
        '    connector: docplanner',
        '    settings:',
        '      pushAuth:',
        '        apiKey: ${env:DP_KEY}',
        '        extra: Literal-Extra-0005',
        'subscriptions:',
        '  - id: s',
        '    kind: pull',
        '    secrets: ["${env:SIGNING}"]',
        '',
      ].join('\n'),
    );
    const failing = run(['validate', '--config', 'secrets.yaml'], secrets);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/secrets\.yaml:12:17 instances\[0\]\.settings\.pushAuth\.apiKey: /);
    expect(failing.stdout).toMatch(/secrets\.yaml:17:15 subscriptions\[0\]\.secrets\[0\]: /);
    for (const value of [
      ...Object.values(secrets).filter((v) => v !== 'short'),
      'Literal-Secret-Key-Value-0004',
    ]) {
      expect(failing.all).not.toContain(value);
    }
    const passing = run(['validate', '--config', example], {
      SWITCHYARD_ADMIN_TOKEN: 'Admin-Token-Value-0006',
      DATABASE_URL: 'postgres://u:Db-Pass-0007@h/db',
    });
    expect(passing.code).toBe(0);
    expect(passing.all).not.toContain('Admin-Token-Value-0006');
    expect(passing.all).not.toContain('Db-Pass-0007');
    expect(passing.stdout).toContain('database: Postgres from DATABASE_URL');
  });

  it('without --config, checks the file start would run (the checkout example when there is no ./switchyard.yaml)', () => {
    const { SWITCHYARD_CONFIG: _unset, ...env } = process.env;
    const child = spawnSync(process.execPath, [bin, 'validate'], {
      encoding: 'utf8',
      env: { ...env, DATABASE_URL: '' },
      cwd: mkdtempSync(join(tmpdir(), 'switchyard-cli-empty-')),
    });
    expect(child.stderr).toBe(`no --config and no ./switchyard.yaml: using the example ${example}\n`);
    expect(child.stdout.split('\n')[0]).toBe(`${example} is valid.`);
    expect(child.status).toBe(0);
  });

  it("./sy switchyard <command>: node itself in the caller's directory, no pnpm banner or ELIFECYCLE", () => {
    const sy = fileURLToPath(new URL('../../../../sy', import.meta.url));
    const caller = mkdtempSync(join(tmpdir(), 'switchyard-cli-sy-'));
    writeFileSync(join(caller, 'mine.yaml'), 'version: 1\n');
    writeFileSync(join(caller, 'broken.yaml'), 'version: 2\n');
    const { DATABASE_URL: _ignored, ...env } = process.env;
    const valid = spawnSync(sy, ['switchyard', 'validate', '--config', 'mine.yaml'], {
      encoding: 'utf8',
      env,
      cwd: caller,
    });
    expect(valid.stdout.split('\n')[0]).toBe('mine.yaml is valid.');
    expect(valid.stderr).toBe('');
    expect(valid.status).toBe(0);
    const broken = spawnSync(sy, ['switchyard', 'validate', '--config', 'broken.yaml'], {
      encoding: 'utf8',
      env,
      cwd: caller,
    });
    expect(broken.stdout).toMatch(/^broken\.yaml:1:\d+ version: must be 1\n$/);
    expect(broken.stderr).toBe('broken.yaml: 1 problem\n');
    expect(broken.status).toBe(1);
  }, 90_000);

  // `events --help | head -2` died of EPIPE with a stack: a command's --help ran before the reader's
  // going away was handled, and `start --help` never had it handled (start keeps its own).
  it.each(['help', 'events --help', 'start --help'])(
    'a reader that goes away ends the output quietly (`switchyard %s | head -1`)',
    async (line) => {
      const args = line.split(' ');
      const { DATABASE_URL: _ignored, ...env } = process.env;
      const child = spawn(process.execPath, [bin, ...args], {
        env,
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Closed before the child has loaded: every write it makes meets a pipe with no reader (EPIPE).
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      expect(stderr).toBe('');
      expect(code).toBe(0);
    },
  );

  it('names an unreadable config file without a stack trace', () => {
    const result = run(['validate', '--config', 'missing.yaml']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('missing.yaml:1:1 cannot read the config file (no such file)\n');
  });

  it('answers usage mistakes with one line and exit 2', () => {
    const unknown = run(['valdate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'switchyard: unknown command "valdate"; did you mean "validate"? (run "switchyard help" for the list)\n',
    );
    const badOption = run(['validate', '--conf', 'x.yaml']);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/^switchyard validate: Unknown option '--conf'/);
    expect(badOption.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});

describe('the compile cache (child process)', () => {
  // Node reports what its compile cache does on stderr with NODE_DEBUG_NATIVE=COMPILE_CACHE.
  const debug = (cache: string) => ({ NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
  const mainTs = `StrippedTypeScript ${new URL('./main.ts', import.meta.url).href}`;

  it('is on by default, in the install: a second run strips no TypeScript', () => {
    // NODE_COMPILE_CACHE unset: the bin's own default directory (node alone would use no cache).
    const env = { NODE_COMPILE_CACHE: '', NODE_DEBUG_NATIVE: 'COMPILE_CACHE' };
    const first = run(['validate', '--config', example], env);
    expect(first.code).toBe(0);
    const second = run(['validate', '--config', example], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    const defaultDir = fileURLToPath(
      new URL('../../node_modules/.cache/switchyard-compile/', import.meta.url),
    );
    expect(second.stderr).toContain(`reading cache from ${defaultDir}`);
    expect(second.stderr).toContain(`retrieving transpile cache for ${mainTs}...success`);
    // No module of the hub's was stripped on the second run (the stripper was never needed).
    expect(second.stderr).not.toMatch(/no transpile cache for StrippedTypeScript/);
  });

  it('NODE_COMPILE_CACHE chooses the directory', () => {
    const cache = mkdtempSync(join(tmpdir(), 'switchyard-compile-cache-'));
    const result = run(['validate', '--config', example], debug(cache));
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`saving transpilation cache for ${mainTs}`);
    expect(readdirSync(cache)).toHaveLength(1);
  });

  it('a cache directory that cannot be written is no reason not to start', () => {
    const notADirectory = join(dir, 'compile-cache-is-a-file');
    writeFileSync(notADirectory, '');
    const result = run(['validate', '--config', example], { NODE_COMPILE_CACHE: notADirectory });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('is valid.');
  });

  it('NODE_DISABLE_COMPILE_CACHE=1 turns it off', () => {
    const cache = mkdtempSync(join(tmpdir(), 'switchyard-compile-cache-'));
    const result = run(['validate', '--config', example], {
      ...debug(cache),
      NODE_DISABLE_COMPILE_CACHE: '1',
    });
    expect(result.code).toBe(0);
    expect(readdirSync(cache)).toEqual([]);
  });
});

describe('switchyard validate and start agree on what a real Postgres needs (in process)', () => {
  const withUrl = [
    'version: 1',
    'server:',
    '  port: 0',
    'database:',
    '  url: postgres://hub:${env:PG_PASS}@127.0.0.1:1/hub',
    '',
  ].join('\n');
  const withoutDatabase = ['# the hub of the team', 'version: 1', 'server:', '  port: 0', ''].join('\n');

  it('refuses a database.url without secretKey in validate, at the url, and start says the same', async () => {
    writeFileSync(join(dir, 'no-key.yaml'), withUrl);
    const env = { PG_PASS: 'Pg-Pass-0009' };
    const validated = memoryIO(env);
    expect(await main(['validate', '--config', 'no-key.yaml'], validated)).toBe(1);
    expect(validated.out()).toMatch(
      /^no-key\.yaml:5:8 secretKey: is required with a real Postgres \(database\.url is set\)/,
    );
    expect(validated.err()).toBe('no-key.yaml: 1 problem\n');
    const started = memoryIO(env);
    expect(await main(['start', '--config', 'no-key.yaml'], started)).toBe(1);
    // The line validate printed, first of start's (it connects to nothing before this check).
    expect(started.err().split('\n')[0]).toBe(validated.out().trimEnd());
    for (const io of [validated, started]) expect(io.out() + io.err()).not.toContain('Pg-Pass-0009');
    // A command on the database starts nothing: it says what it did not do (it said "not started").
    writeFileSync(join(dir, 'unset-key.yaml'), `${withUrl}secretKey: \${env:NO_SUCH_KEY}\n`);
    for (const command of [['events', 'list'], ['migrate']]) {
      const io = memoryIO(env);
      expect(await main([...command, '--config', 'unset-key.yaml'], io)).toBe(1);
      expect(io.err().trimEnd().split('\n').at(-1)).toBe('unset-key.yaml: 1 problem; nothing done');
    }
  });

  it("lists a missing secretKey beside the file's other problems (a bad url among them), not after they are fixed", async () => {
    writeFileSync(
      join(dir, 'bad-url.yaml'),
      ['version: 1', 'database:', '  url: not-a-url', 'server:', '  port: x', ''].join('\n'),
    );
    const validated = memoryIO({});
    expect(await main(['validate', '--config', 'bad-url.yaml'], validated)).toBe(1);
    expect(validated.out()).toMatch(/^bad-url\.yaml:3:8 database\.url: must be a postgres:\/\/ URL$/m);
    expect(validated.out()).toMatch(
      /^bad-url\.yaml:3:8 secretKey: is required with a real Postgres \(database\.url is set\)/m,
    );
    expect(validated.out()).toMatch(/^bad-url\.yaml:5:9 server\.port: /m);
    expect(validated.err()).toBe('bad-url.yaml: 3 problems\n');
    // DATABASE_URL that is not a URL, and no key: both.
    writeFileSync(join(dir, 'env-bad.yaml'), withoutDatabase);
    const env = memoryIO({ DATABASE_URL: 'nope' });
    expect(await main(['validate', '--config', 'env-bad.yaml'], env)).toBe(1);
    expect(env.err()).toBe('env-bad.yaml: 2 problems\n');
    expect(env.out()).toMatch(
      /secretKey: is required with a real Postgres \(DATABASE_URL is set and the file gives no url\)/,
    );
    // With a key, only the url.
    writeFileSync(
      join(dir, 'bad-url-key.yaml'),
      ['version: 1', 'database:', '  url: not-a-url', 'secretKey: a-random-key-0123456789', ''].join('\n'),
    );
    const keyed = memoryIO({});
    expect(await main(['validate', '--config', 'bad-url-key.yaml'], keyed)).toBe(1);
    expect(keyed.err()).toBe('bad-url-key.yaml: 1 problem\n');
  });

  it('refuses DATABASE_URL without secretKey in validate, at the top of the file or its database entry', async () => {
    writeFileSync(join(dir, 'env-db.yaml'), withoutDatabase);
    const env = { DATABASE_URL: 'postgres://hub:Pg-Pass-0010@127.0.0.1:1/hub' };
    const validated = memoryIO(env);
    expect(await main(['validate', '--config', 'env-db.yaml'], validated)).toBe(1);
    // Where a missing top-level field is reported: the first line of the mapping, after the comment.
    expect(validated.out()).toMatch(
      /^env-db\.yaml:2:1 secretKey: is required with a real Postgres \(DATABASE_URL is set and the file gives no url\)/,
    );
    writeFileSync(join(dir, 'env-db-embedded.yaml'), `${withoutDatabase}database:\n  embedded: {}\n`);
    const embedded = memoryIO(env);
    expect(await main(['validate', '--config', 'env-db-embedded.yaml'], embedded)).toBe(1);
    expect(embedded.out()).toMatch(/^env-db-embedded\.yaml:5:1 secretKey: is required with a real Postgres/);
    const started = memoryIO(env);
    expect(await main(['start', '--config', 'env-db.yaml'], started)).toBe(1);
    expect(started.err().split('\n')[0]).toBe(validated.out().trimEnd());
    // With the key, both are content (start is not run: it would connect).
    writeFileSync(join(dir, 'env-db-key.yaml'), `${withoutDatabase}secretKey: a-random-key-0123456789\n`);
    const valid = memoryIO(env);
    expect(await main(['validate', '--config', 'env-db-key.yaml'], valid)).toBe(0);
    expect(valid.out()).toContain('database: Postgres from DATABASE_URL');
  });

  it('checks DATABASE_URL against the pattern of database.url, without printing it', async () => {
    writeFileSync(
      join(dir, 'env-db-bad.yaml'),
      `${withoutDatabase}secretKey: a-random-key-0123456789\ndatabase:\n  embedded: {}\n`,
    );
    const io = memoryIO({ DATABASE_URL: 'mysql://hub:Db-Pass-0011@127.0.0.1/hub' });
    expect(await main(['validate', '--config', 'env-db-bad.yaml'], io)).toBe(1);
    expect(io.out()).toMatch(
      /^env-db-bad\.yaml:6:1 database: the DATABASE_URL environment variable, used because the file gives no database\.url, must be a postgres:\/\/ URL/,
    );
    expect(io.out() + io.err()).not.toContain('Db-Pass-0011');
    // A url in the file wins over DATABASE_URL, which is then not looked at.
    writeFileSync(
      join(dir, 'file-db.yaml'),
      `${withoutDatabase}secretKey: a-random-key-0123456789\ndatabase:\n  url: postgres://hub@127.0.0.1:1/hub\n`,
    );
    const fileWins = memoryIO({ DATABASE_URL: 'mysql://hub:Db-Pass-0011@127.0.0.1/hub' });
    expect(await main(['validate', '--config', 'file-db.yaml'], fileWins)).toBe(0);
  });
});

describe('the database commands, when the database does not answer (in process)', () => {
  // A stopped Postgres is the operator's to fix: one line, exit 1, as start says it; it was
  // "internal error (a bug; please report it)" and a stack trace (found trying a hub as an operator).
  it.each(['events list', 'subscriptions list', 'migrate'])(
    'switchyard %s says it cannot reach the database',
    async (command) => {
      const port = await freePort();
      writeFileSync(
        join(dir, 'stopped.yaml'),
        [
          'version: 1',
          'database:',
          `  url: postgres://hub:\${env:PG_PASS}@127.0.0.1:${port}/hub`,
          'secretKey: a-secret-key-of-32-characters-00',
          '',
        ].join('\n'),
      );
      const io = memoryIO({ PG_PASS: 'Pg-Pass-0010' });
      expect(await main([...command.split(' '), '--config', 'stopped.yaml'], io)).toBe(1);
      expect(io.err()).toMatch(/^switchyard: cannot reach the database: .*ECONNREFUSED.*\n$/);
      expect(io.out() + io.err()).not.toContain('Pg-Pass-0010');
    },
  );
});

describe('the database commands, with a database URL they cannot use (in process)', () => {
  // A malformed URL or a server refusing the SSL the URL asks for is the operator's to fix, as a
  // stopped server is: one line, exit 1, no password; they printed "internal error (a bug; please
  // report it)" and a stack while start said "could not start: Invalid URL" (a secrets audit).
  const oneShot = [
    'events list',
    'subscriptions list',
    'inbound renormalize 00000000-0000-0000-0000-000000000000',
    'commands list',
    'gates list',
    'replay --delivery 00000000-0000-0000-0000-000000000000',
    'migrate',
  ];

  function writeConfig(url: string): void {
    writeFileSync(
      join(dir, 'bad-url.yaml'),
      ['version: 1', 'database:', `  url: "${url}"`, 'secretKey: a-secret-key-of-32-characters-00', ''].join(
        '\n',
      ),
    );
  }

  it.each(oneShot)('switchyard %s names a malformed URL in one line', async (command) => {
    for (const url of [
      'postgres://hub:${env:PG_PASS}@127.0.0.1:99999/hub',
      'postgres://hub:${env:PG_PASS}@[::1/hub',
    ]) {
      writeConfig(url);
      const io = memoryIO({ PG_PASS: 'Pg-Pass-0012' });
      expect(await main([...command.split(' '), '--config', 'bad-url.yaml'], io), url).toBe(1);
      expect(io.err(), url).toMatch(
        /^switchyard: cannot reach the database: its URL .* is not a valid URL: .*\n$/,
      );
      expect(io.out() + io.err()).not.toContain('Pg-Pass-0012');
    }
  });

  it.each(oneShot)('switchyard %s names a server refusing SSL in one line', async (command) => {
    // What a Postgres without SSL answers an SSLRequest (8 bytes): 'N' (protocol docs, "SSL Session
    // Encryption": https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL).
    const server = createServer((socket) => {
      socket.once('data', () => socket.write('N'));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      writeConfig(`postgres://hub:\${env:PG_PASS}@127.0.0.1:${port}/hub?sslmode=no-verify`);
      const io = memoryIO({ PG_PASS: 'Pg-Pass-0013' });
      expect(await main([...command.split(' '), '--config', 'bad-url.yaml'], io)).toBe(1);
      expect(io.err()).toMatch(
        /^switchyard: cannot reach the database: The server does not support SSL connections .*\n$/,
      );
      expect(io.out() + io.err()).not.toContain('Pg-Pass-0013');
    } finally {
      server.close();
    }
  });
});

describe('numeric options (in process)', () => {
  it('answers a negative number with the allowed range, as any other bad number', async () => {
    // parseArgs took `-5` for a forgotten argument: "Option '--limit <value>' argument is ambiguous".
    for (const [args, message] of [
      [['events', 'list', '--limit', '-5'], '--limit must be an integer 1..500'],
      [['events', 'list', '--limit', '0'], '--limit must be an integer 1..500'],
      [['commands', 'list', '--limit', '-1'], '--limit must be an integer 1..500'],
      [['start', '--port', '-1'], '--port must be an integer 0..65535'],
    ] as const) {
      const io = memoryIO();
      expect(await main([...args], io), args.join(' ')).toBe(2);
      expect(io.err(), args.join(' ')).toBe(`switchyard: ${message}\n`);
    }
  });
});

describe('switchyard help and schema (in process)', () => {
  it('lists the commands of the table', async () => {
    const io = memoryIO();
    expect(await main(['help'], io)).toBe(0);
    expect(io.out()).toMatch(/^Usage: switchyard <command>/);
    expect(io.out()).toMatch(/\n {2}validate +check a config file/);
    const none = memoryIO();
    expect(await main([], none)).toBe(0);
    expect(none.out()).toBe(io.out());
  });

  it('shows one command’s options, also for --help', async () => {
    const io = memoryIO();
    expect(await main(['validate', '--help'], io)).toBe(0);
    expect(io.out()).toMatch(/^switchyard validate \[--config FILE\]/);
    expect(io.out()).toContain('--config FILE');
  });

  // `commands`' usage line left out --status, --limit and --idempotency-key, `push`'s --content-type
  // and `gates`' --config: a reader of the first line did not know they existed.
  it('names every option of every command in its usage line and in its details', () => {
    for (const command of commands) {
      for (const name of Object.keys(command.options)) {
        expect(command.usage, `${command.name} --${name}`).toContain(`--${name}`);
        expect(command.details ?? '', `${command.name} --${name}`).toContain(`--${name}`);
      }
    }
  });

  // start's help said a worker ran no commands and that SIGHUP did not stop it, and listen's usage
  // made --subscription required: an operator splitting roles from the help alone ran no command
  // worker, and the README's bare `switchyard listen` looked like a mistake.
  it("says in start's and listen's help what docs/operations.md says", () => {
    const help = (name: string) => commands.find((c) => c.name === name)!;
    const operations = readFileSync(
      fileURLToPath(new URL('../../../../docs/operations.md', import.meta.url)),
      'utf8',
    );
    expect(operations).toContain('| worker | normalizes, delivers, pulls from vendors, runs commands');
    expect(help('start').details).toContain('worker: normalize, deliver, pull, run commands and cleanup');
    expect(operations).toContain('SIGTERM, SIGINT or SIGHUP (its terminal closed) stops it gracefully');
    expect(help('start').details).toContain('SIGTERM, SIGINT or SIGHUP stops it gracefully');
    expect(operations).toContain('`switchyard listen [--subscription ID]');
    expect(help('listen').usage).toMatch(/^\[--subscription ID\]/);
  });

  it('prints the config schema', async () => {
    const io = memoryIO();
    expect(await main(['schema'], io)).toBe(0);
    expect(JSON.parse(io.out()).title).toBe('SwitchyardConfig');
  });

  it('runs commands added to the table, and reports internal errors with their stack', async () => {
    const io = memoryIO();
    const table: Command[] = [
      {
        name: 'boom',
        summary: 'fails',
        usage: '',
        options: {},
        run: async () => {
          throw new TypeError('bug');
        },
      },
      {
        name: 'ok',
        summary: 'works',
        usage: '--n N',
        options: { n: { type: 'string' } },
        run: async (a) => Number(a.values.n),
      },
    ];
    expect(await main(['ok', '--n', '3'], io, table)).toBe(3);
    expect(await main(['boom'], io, table)).toBe(70);
    expect(io.err()).toMatch(/internal error[\s\S]*TypeError: bug\n\s+at /);
  });
});

describe('the Node version guard', () => {
  it('refuses Node older than 22.12 with one clear line', () => {
    expect(checkNodeVersion('v20.11.1')).toEqual({
      ok: false,
      message:
        'switchyard needs Node >= 22.12 (found v20.11.1); run ./sy switchyard … (it fetches a suitable Node) or install Node 24',
    });
    expect(checkNodeVersion('v22.11.9').ok).toBe(false);
    expect(checkNodeVersion('v18.0.0').ok).toBe(false);
  });

  it('accepts 22.12 and later', () => {
    for (const version of ['v22.12.0', 'v22.18.1', 'v23.0.0', 'v24.21.0'])
      expect(checkNodeVersion(version).ok).toBe(true);
  });

  it('tells whether TypeScript loads without a flag', () => {
    expect(stripsTypes({ typescript: 'strip' })).toBe(true);
    expect(stripsTypes({ typescript: false })).toBe(false);
    expect(stripsTypes({})).toBe(false);
  });
});
