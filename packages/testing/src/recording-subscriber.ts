import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request the subscriber received. */
export interface RecordedRequest {
  /** 0-based arrival order. */
  index: number;
  method: string;
  /** Path and query, e.g. `/hooks?x=1`. */
  path: string;
  /** Lowercase names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  rawBody: Buffer;
  /** The body as UTF-8 text. */
  text: string;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
  receivedAt: Date;
  /** `webhook-id` header. */
  webhookId: string | undefined;
  /** `type` and `subject` of a CloudEvent body, when present. */
  type: string | undefined;
  subject: string | undefined;
  /** Standard Webhooks verification against the configured secrets. */
  signature: SignatureCheck;
  /** What the subscriber answered; undefined while a delay is pending. `aborted` when the client hung up first. */
  response: { status: number; aborted: boolean } | undefined;
}

/** Result of verifying one request's Standard Webhooks signature. */
export interface SignatureCheck {
  /** True when at least one configured secret verified the request. False when no secret is configured. */
  valid: boolean;
  /** Indexes (into `secrets`) of the secrets whose signature was present and valid. */
  matchedSecrets: number[];
  /** Why verification failed, when it did. */
  error?: string;
}

/** How to answer one call. */
export interface ResponseStep {
  /** Default 200. */
  status?: number;
  /** Wait this long before answering (simulates a slow or timing-out subscriber). */
  delayMs?: number;
  /** Sets a `Retry-After` header (seconds, or an HTTP date string). */
  retryAfter?: number | string;
  headers?: Record<string, string>;
  /** A JSON body (sent as application/json) or text. */
  body?: unknown;
}

/** A scripted answer: a bare status or a full step. */
export type ScriptStep = number | ResponseStep;

/**
 * Decides the answer to a request (approver mode). Return undefined to fall through to the scripts
 * and the default.
 */
export type RequestHandler = (
  request: RecordedRequest,
) => ScriptStep | undefined | Promise<ScriptStep | undefined>;

/** Options for {@link startRecordingSubscriber}. */
export interface RecordingSubscriberOptions {
  /** `whsec_…` secrets to verify with (several during a rotation). */
  secrets?: string | readonly string[];
  /** Answer 401 to requests whose signature does not verify (default false: record and answer normally). */
  rejectInvalidSignatures?: boolean;
  /** Answers for successive calls, e.g. `[500, 500, 200]`; after it runs out, `defaultResponse`. */
  script?: readonly ScriptStep[];
  /** Per-subject scripts (CloudEvent `subject`), consumed by calls for that subject; take precedence over `script`. */
  subjectScripts?: Readonly<Record<string, readonly ScriptStep[]>>;
  /** Decides answers first (see {@link RequestHandler}). */
  handler?: RequestHandler;
  /** Default 200 with an empty body. */
  defaultResponse?: ScriptStep;
  /** Default 127.0.0.1. */
  host?: string;
}

/** A running recording subscriber. */
export interface RecordingSubscriber {
  /** e.g. `http://127.0.0.1:40123/`. Any path is accepted: append one to tell endpoints apart. */
  readonly url: string;
  /** Every request so far, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  /** Parsed bodies of requests answered 2xx (what a real subscriber would have accepted). */
  accepted(): unknown[];
  /**
   * Waits until `count` requests have arrived (resolves with all requests so far), or until a
   * request satisfies `predicate` (resolves with it). Rejects after `timeoutMs` (default 10 s) saying
   * what did arrive. Predicates are re-checked when a response is sent too, so they may test `response`.
   */
  waitFor(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  waitFor(predicate: (request: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Replaces the global script (calls already answered do not count). */
  setScript(script: readonly ScriptStep[]): void;
  /** Replaces the script of one subject. */
  setSubjectScript(subject: string, script: readonly ScriptStep[]): void;
  setHandler(handler: RequestHandler | undefined): void;
  setDefaultResponse(step: ScriptStep): void;
  /** Forgets recorded requests (scripts stay). */
  clear(): void;
  /** Stops listening, cuts open connections and pending delays. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an HTTP server on 127.0.0.1 (random port) that plays a webhook subscriber: it records every
 * request, verifies Standard Webhooks signatures, and answers as scripted — status sequences,
 * per-subject scripts, delays (for timeouts), `Retry-After`, 410 — or as a handler decides (approvers).
 *
 * @example
 * ```ts
 * const sub = await startRecordingSubscriber({ secrets: 'whsec_...', script: [500, { status: 429, retryAfter: 1 }, 200] });
 * // ... point a subscription at sub.url and push an event
 * const [, , third] = await sub.waitFor(3);
 * expect(third.signature.valid).toBe(true);
 * await sub.close();
 * ```
 *
 * @example Approver for a gate:
 * ```ts
 * const approver = await startRecordingSubscriber({
 *   handler: (req) => ({ status: 200, body: { decision: req.subject?.includes('vip') ? 'approve' : 'refuse' } }),
 * });
 * ```
 */
export async function startRecordingSubscriber(
  options: RecordingSubscriberOptions = {},
): Promise<RecordingSubscriber> {
  const secrets = typeof options.secrets === 'string' ? [options.secrets] : [...(options.secrets ?? [])];
  const verifiers = secrets.map((secret) => new Webhook(secret));
  const requests: RecordedRequest[] = [];
  let script: ScriptStep[] = [...(options.script ?? [])];
  const subjectScripts = new Map<string, ScriptStep[]>(
    Object.entries(options.subjectScripts ?? {}).map(([subject, steps]) => [subject, [...steps]]),
  );
  let handler = options.handler;
  let defaultResponse: ScriptStep = options.defaultResponse ?? 200;
  const waiters = new Set<() => void>();
  const timers = new Set<NodeJS.Timeout>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };

  const verify = (headers: Record<string, string>, rawBody: Buffer): SignatureCheck => {
    if (verifiers.length === 0) return { valid: false, matchedSecrets: [], error: 'no secret configured' };
    const matchedSecrets: number[] = [];
    let error: string | undefined;
    verifiers.forEach((verifier, i) => {
      try {
        verifier.verify(rawBody, headers);
        matchedSecrets.push(i);
      } catch (e) {
        error ??= (e as Error).message;
      }
    });
    return matchedSecrets.length > 0
      ? { valid: true, matchedSecrets }
      : { valid: false, matchedSecrets, error };
  };

  const decide = async (recorded: RecordedRequest): Promise<ResponseStep> => {
    const fromHandler = handler ? await handler(recorded) : undefined;
    if (fromHandler !== undefined) return toStep(fromHandler);
    if (options.rejectInvalidSignatures && !recorded.signature.valid) {
      return { status: 401, body: { error: 'invalid signature', detail: recorded.signature.error } };
    }
    const perSubject = recorded.subject === undefined ? undefined : subjectScripts.get(recorded.subject);
    if (perSubject && perSubject.length > 0) return toStep(perSubject.shift()!);
    if (script.length > 0) return toStep(script.shift()!);
    return toStep(defaultResponse);
  };

  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const text = rawBody.toString('utf8');
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    const field = (name: string) => {
      const value =
        json !== null && typeof json === 'object' ? (json as Record<string, unknown>)[name] : undefined;
      return typeof value === 'string' ? value : undefined;
    };
    const recorded: RecordedRequest = {
      index: requests.length,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers,
      rawBody,
      text,
      json,
      receivedAt: new Date(),
      webhookId: headers['webhook-id'],
      type: field('type'),
      subject: field('subject'),
      signature: verify(headers, rawBody),
      response: undefined,
    };
    requests.push(recorded);
    notify();

    let step: ResponseStep;
    try {
      step = await decide(recorded);
    } catch (error) {
      step = { status: 500, body: { error: `handler failed: ${(error as Error).message}` } };
    }
    let hungUp = false;
    res.once('close', () => {
      hungUp = true;
    });
    if (step.delayMs && step.delayMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, step.delayMs);
        timers.add(timer);
        // The client gave up (its timeout): stop waiting, there is nobody to answer.
        res.once('close', () => {
          clearTimeout(timer);
          timers.delete(timer);
          resolve();
        });
      });
    }
    if (hungUp || res.destroyed || res.writableEnded) {
      recorded.response = { status: step.status ?? 200, aborted: true };
      notify();
      return;
    }
    const outHeaders: Record<string, string> = { ...step.headers };
    if (step.retryAfter !== undefined) outHeaders['retry-after'] = String(step.retryAfter);
    let body: string | undefined;
    if (step.body !== undefined) {
      if (typeof step.body === 'string') {
        body = step.body;
        outHeaders['content-type'] ??= 'text/plain';
      } else {
        body = JSON.stringify(step.body);
        outHeaders['content-type'] ??= 'application/json';
      }
    }
    res.writeHead(step.status ?? 200, outHeaders);
    res.end(body);
    recorded.response = { status: step.status ?? 200, aborted: false };
    notify();
  };

  const server = createServer((req, res) => {
    answer(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`recording subscriber failed: ${(error as Error).message}`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  const subscriber: RecordingSubscriber = {
    url: `http://${host}:${address.port}/`,
    requests,
    accepted: () =>
      requests.filter((r) => r.response && !r.response.aborted && r.response.status < 300).map((r) => r.json),
    waitFor: ((target: number | ((request: RecordedRequest) => boolean), timeoutMs = 10_000) =>
      new Promise<RecordedRequest[] | RecordedRequest>((resolve, reject) => {
        const check = () => {
          if (typeof target === 'number') {
            if (requests.length >= target) return done(() => resolve([...requests]));
          } else {
            const found = requests.find(target);
            if (found) return done(() => resolve(found));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = requests.map(
            (r) => `${r.method} ${r.path} ${r.type ?? ''} → ${r.response?.status ?? 'pending'}`,
          );
          const wanted =
            typeof target === 'number' ? `${target} requests` : 'a request matching the predicate';
          reject(
            new Error(`waited ${timeoutMs} ms for ${wanted}; got ${requests.length}: ${seen.join('; ')}`),
          );
        }, timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      })) as RecordingSubscriber['waitFor'],
    setScript(next) {
      script = [...next];
    },
    setSubjectScript(subject, next) {
      subjectScripts.set(subject, [...next]);
    },
    setHandler(next) {
      handler = next;
    },
    setDefaultResponse(step) {
      defaultResponse = step;
    },
    clear() {
      requests.length = 0;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
  return subscriber;
}

function toStep(step: ScriptStep): ResponseStep {
  return typeof step === 'number' ? { status: step } : step;
}
