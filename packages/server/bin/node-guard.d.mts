export declare const MIN_NODE: readonly [number, number, number];
export declare function checkNodeVersion(version: string): { ok: true } | { ok: false; message: string };
export declare function stripsTypes(features: { typescript?: unknown } | undefined): boolean;
