/**
 * Delivery primitives: Standard Webhooks signing, the SSRF guard, the outbound POST, retry
 * schedules, sealed secrets, the vendor HTTP client and redaction. Pure building blocks; the
 * pipeline (`../pipeline`) composes them.
 */
export * from './errors.ts';
export * from './http-post.ts';
export * from './redact.ts';
export * from './retry-schedule.ts';
export * from './secret-box.ts';
export * from './sign.ts';
export * from './signed-post.ts';
export * from './ssrf.ts';
export * from './vendor-http.ts';
