/**
 * Third-party modules the benchmarks need but the root package does not depend on: they are
 * dependencies of @switchyard/server, so they are loaded from there (bench/ is not a workspace
 * package and must not add dependencies of its own).
 */
import { createRequire } from 'node:module';
import type pgType from 'pg';
import type * as FastifyModule from '../../packages/server/node_modules/fastify/fastify.js';
import type * as PgBossModule from '../../packages/server/node_modules/pg-boss/dist/index.js';
import type * as PromClientModule from '../../packages/server/node_modules/prom-client/index.js';

const serverRequire = createRequire(new URL('../../packages/server/package.json', import.meta.url));

export const pg = serverRequire('pg') as typeof pgType;
export const fastify = serverRequire('fastify') as typeof FastifyModule.fastify;
export const { PgBoss } = serverRequire('pg-boss') as typeof PgBossModule;
export type PgBoss = InstanceType<typeof PgBoss>;
export const pino = serverRequire('pino') as typeof import('../../packages/server/node_modules/pino/pino.js');
export const { Registry } = serverRequire('prom-client') as typeof PromClientModule;
