import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { hookUrlOf, type InboundRequest, type PresentedCredentials, type PushRoute } from '@switchyard/core';
import type { ResolvedConfig, ResolvedInstance } from '../../config/types.ts';
import { type CliIO, type Command, configOption, UsageError } from '../command.ts';

/** How long `push` waits for the hub's answer. */
const PUSH_TIMEOUT_MS = 30_000;

/** The `:name` parameters of a route's path. */
function routeParams(route: PushRoute): string[] {
  return route.path
    .split('/')
    .filter((s) => s.startsWith(':'))
    .map((s) => s.slice(1));
}

/**
 * The route to push to: the one named, else the first whose path takes exactly the parameters
 * given (the connector's own, such as a key in the path, and `--param`), preferring `default`.
 */
function chooseRoute(
  instance: ResolvedInstance,
  routes: readonly PushRoute[],
  named: string | undefined,
  params: Readonly<Record<string, string>>,
): PushRoute {
  if (named !== undefined) {
    const route = routes.find((r) => r.name === named);
    if (!route)
      throw new UsageError(
        `connector ${instance.connector.name} has no push route ${named}; its routes: ${routes.map((r) => r.name).join(', ')}`,
      );
    return route;
  }
  const given = Object.keys(params).sort().join(',');
  const fits = routes.filter((r) => routeParams(r).sort().join(',') === given);
  const route = fits.find((r) => r.name === 'default') ?? fits[0];
  if (!route)
    throw new UsageError(
      `no push route of ${instance.connector.name} takes exactly the parameters given (${given || 'none'}); name one with --route (${routes.map((r) => `${r.name}: /hooks/${instance.id}/${r.path}`).join(', ')})`,
    );
  return route;
}

/** `--param name=value` options as a record. */
function paramOptions(values: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of Array.isArray(values) ? values : []) {
    const text = String(item);
    const eq = text.indexOf('=');
    if (eq <= 0) throw new UsageError(`--param ${text}: write name=value`);
    out[text.slice(0, eq)] = text.slice(eq + 1);
  }
  return out;
}

/** The path below the hub's base URL: `/hooks/{instance}` and the route's path, parameters filled in. */
function hookPath(instanceId: string, route: PushRoute, params: Readonly<Record<string, string>>): string {
  const segments = route.path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      if (!s.startsWith(':')) return s;
      const value = params[s.slice(1)];
      if (value === undefined) throw new UsageError(`route ${route.name} needs --param ${s.slice(1)}=VALUE`);
      return encodeURIComponent(value);
    });
  return `/hooks/${encodeURIComponent(instanceId)}${segments.length > 0 ? `/${segments.join('/')}` : ''}`;
}

async function readBody(file: string, io: CliIO): Promise<Buffer> {
  if (file !== '-') {
    try {
      return await readFile(resolve(io.cwd, file));
    } catch (error) {
      throw new UsageError(
        `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The hub to push to, and where that came from (said when it does not answer): `--url`, else a
 * running hub process of this config file on this machine (it published its listen address, which
 * `--port` may have changed: runtime/running.ts), else `server.publicUrl`, else the file's listen
 * address.
 */
async function hubUrl(config: ResolvedConfig, url: unknown): Promise<{ base: string; from: string }> {
  if (typeof url === 'string') return { base: url.replace(/\/+$/, ''), from: 'the --url given' };
  const [running] = await (await import('../../runtime/running.ts')).runningHubs(config.file);
  if (running)
    return {
      base: running.url,
      from: `where the hub process ${running.pid} of ${basename(config.file)} listens`,
    };
  const { baseUrl } = await import('../../runtime/banner.ts');
  const base = baseUrl(config);
  return config.server.publicUrl
    ? { base, from: `server.publicUrl of ${basename(config.file)} (no hub process of it runs here)` }
    : {
        base,
        from: `server.host and server.port of ${basename(config.file)} (no hub process of it runs here)`,
      };
}

/**
 * `switchyard push`: sends a vendor payload file to an instance of the config file as its vendor
 * would, with the credentials the vendor presents (the connector's `push.sign`: an API key, Basic
 * credentials, a key in the path, or a signature over the body made now), and prints the hub's
 * answer. For trying an instance by hand, a body-signing vendor included; the credentials are
 * never printed.
 */
export const pushCommand: Command = {
  name: 'push',
  summary: 'send a vendor payload file to an instance, with the credentials its vendor presents',
  usage:
    '--instance ID FILE [--config FILE] [--route NAME] [--param NAME=VALUE] [--url URL] [--content-type TYPE] [--signed-at TIME]',
  details: [
    'FILE is the body as the vendor sends it (a fixture of the connector, say); - reads it from stdin.',
    '',
    'Options:',
    '  -c, --config FILE     the config file (defaults as for start); its instance gives the credentials',
    "                        (only that instance's secret references need resolve)",
    '  --instance ID         the instance to push to',
    '  --route NAME          the connector route (default: the one the credentials and --param fit, else default)',
    '  --param NAME=VALUE    a path parameter of the route (repeatable)',
    '  --url URL             the hub base URL (default: where a running hub process of the config file',
    '                        listens, as `start --port` may have moved it; else server.publicUrl, else',
    '                        server.host and server.port)',
    '  --content-type TYPE   default application/json',
    '  --signed-at TIME      present the credentials as the vendor made them at TIME (ISO date-time, or',
    '                        10m for ten minutes ago), not now: a signature or token outside the',
    "                        instance's window, to see the hub refuse it as a replay",
    '',
    'Prints the answer status and body. Exit code: 0 for a 2xx answer, 1 otherwise.',
  ].join('\n'),
  options: {
    ...configOption,
    instance: { type: 'string' },
    route: { type: 'string' },
    param: { type: 'string', multiple: true },
    url: { type: 'string' },
    'content-type': { type: 'string' },
    'signed-at': { type: 'string' },
  },
  allowPositionals: true,
  async run(args, io) {
    const id = args.values.instance;
    if (typeof id !== 'string' || id === '') throw new UsageError('push needs --instance ID');
    const [file, ...extra] = args.positionals;
    if (file === undefined || extra.length > 0) throw new UsageError('push needs one FILE (or - for stdin)');
    const { loadForCommand } = await import('../hub.ts');
    // Only this instance's credentials: push talks HTTP to a running hub, so the hub's secretKey,
    // its database and the other vendors' credentials need not be set on this machine.
    const loaded = await loadForCommand(args, io, { instance: id }, 'nothing sent');
    if (typeof loaded === 'number') return loaded;
    const instance = loaded.config.instances.find((i) => i.id === id);
    if (!instance)
      throw new UsageError(
        `no instance ${id} in ${loaded.shown}; its instances: ${loaded.config.instances.map((i) => i.id).join(', ') || 'none'}`,
      );
    const push = instance.connector.push;
    if (!push || instance.mode === 'pull')
      throw new UsageError(
        `instance ${id} is not pushed to (connector ${instance.connector.name}, mode ${instance.mode})`,
      );

    // A time of its own, for trying the hub's replay window without an openssl line.
    const signedAt = args.values['signed-at'];
    const receivedAt =
      typeof signedAt === 'string'
        ? (await import('./replay.ts')).parseSince(signedAt, new Date(), '--signed-at')
        : new Date();
    const body = await readBody(file, io);
    const contentType = args.values['content-type'];
    const headers: Record<string, string> = {
      'content-type': typeof contentType === 'string' ? contentType : 'application/json',
    };
    const given = paramOptions(args.values.param);
    const routeName = typeof args.values.route === 'string' ? args.values.route : undefined;
    // What the vendor presents depends on the route (BookingBug's token route) and on when it signs.
    const publicUrl = loaded.config.server.publicUrl;
    const signFor = (route: PushRoute): PresentedCredentials => {
      if (!push.sign) return {};
      const request: InboundRequest = {
        route: route.name,
        params: given,
        query: {},
        method: 'POST',
        headers,
        rawBody: body,
        sourceIp: '127.0.0.1',
        receivedAt,
        // The URL the hub will hand the connector (a vendor such as Square signs it): publicUrl + path.
        ...(publicUrl && !route.path.includes(':')
          ? { hookUrl: hookUrlOf(publicUrl, hookPath(instance.id, route, given)) }
          : {}),
      };
      return push.sign(request, instance.settings as never);
    };
    let route = chooseRoute(instance, push.routes, routeName, given);
    let presented = signFor(route);
    if (routeName === undefined && Object.keys(presented.params ?? {}).length > 0) {
      // The credentials travel in the path (a key as the last segment): the route that takes them.
      route = chooseRoute(instance, push.routes, undefined, { ...given, ...presented.params });
      presented = signFor(route);
    }
    if (!push.sign)
      io.stderr.write(
        `connector ${instance.connector.name} does not say how its vendor presents credentials (push.sign): sending none\n`,
      );

    const { base, from } = await hubUrl(loaded.config, args.values.url);
    const url = new URL(`${base}${hookPath(instance.id, route, { ...given, ...presented.params })}`);
    for (const [name, value] of Object.entries(presented.query ?? {})) url.searchParams.set(name, value);
    const shown = `${base}/hooks/${instance.id}${route.path ? `/${route.path}` : ''}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { ...headers, ...presented.headers },
        body,
        signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      io.stderr.write(
        `POST ${shown}: no answer (${cause}); is the hub running? ${base} is ${from}; --url URL names another\n`,
      );
      return 1;
    }
    const text = await response.text();
    io.stdout.write(`${response.status} ${response.statusText}\n${text}${text.endsWith('\n') ? '' : '\n'}`);
    io.stderr.write(`POST ${shown} (${body.length} bytes, route ${route.name})\n`);
    return response.ok ? 0 : 1;
  },
};
