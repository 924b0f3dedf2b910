import { request } from 'node:http';

/** Where the Docker engine listens, from `DOCKER_HOST` (unix:// or tcp://) or the default socket. */
function dockerEndpoint(): { socketPath: string } | { host: string; port: number } {
  const dockerHost = process.env.DOCKER_HOST;
  if (dockerHost?.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  if (dockerHost?.startsWith('tcp://')) {
    const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    return { host: url.hostname, port: Number(url.port || 2375) };
  }
  return { socketPath: '/var/run/docker.sock' };
}

/**
 * True when a Docker engine answers `GET /_ping` within `timeoutMs`. Quick by design: it decides
 * whether tests may use testcontainers, and must not slow down a machine without Docker.
 *
 * @example
 * ```ts
 * if (await dockerAvailable()) console.log('testcontainers will be used');
 * ```
 */
export async function dockerAvailable(timeoutMs = 1_000): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = request({ ...dockerEndpoint(), path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A Postgres started in a container by testcontainers. */
export interface ContainerPostgres {
  url: string;
  stop(): Promise<void>;
}

/** The image used for tests: the oldest Postgres major the hub supports. */
export const POSTGRES_TEST_IMAGE = 'postgres:15-alpine';

/**
 * Starts Postgres in a container (testcontainers). Only call it when {@link dockerAvailable} is true.
 *
 * @example
 * ```ts
 * const pg = await startPostgresContainer();
 * // ... use pg.url
 * await pg.stop();
 * ```
 */
export async function startPostgresContainer(image = POSTGRES_TEST_IMAGE): Promise<ContainerPostgres> {
  // Imported lazily: testcontainers is heavy and unused on machines without Docker.
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer(image)
    .withDatabase('postgres')
    .withCommand(['postgres', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'max_connections=300'])
    .start();
  return {
    url: container.getConnectionUri(),
    async stop() {
      await container.stop();
    },
  };
}
