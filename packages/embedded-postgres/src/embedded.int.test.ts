import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgres, freePort, startEmbeddedPostgres } from './embedded.ts';

// Runs whatever DATABASE_URL says: the embedded path is what the server's embedded mode and
// Docker-less machines use, so it is exercised on every run.
const dirs: string[] = [];
const running: EmbeddedPostgres[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sy-embedded-test-'));
  // mkdtemp makes it private; as root, Postgres runs as another OS user that must traverse it.
  await chmod(dir, 0o755);
  dirs.push(dir);
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A port held by a listener on 127.0.0.1, as another program on the machine would hold it. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, server };
}

afterAll(async () => {
  for (const server of running) await server.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('startEmbeddedPostgres', () => {
  it('starts PostgreSQL 18, and a restart on the same directory keeps the data', async () => {
    const dataDir = join(await tempDir(), 'cluster');
    const first = await startEmbeddedPostgres({ dataDir, persistent: true });
    running.push(first);
    const [version] = await query<{ server_version_num: string }>(first.url, 'SHOW server_version_num');
    expect(Number(version?.server_version_num)).toBeGreaterThanOrEqual(180000);
    await query(first.url, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('survives a restart')");
    await first.stop();

    const second = await startEmbeddedPostgres({ dataDir, persistent: true });
    running.push(second);
    expect(await query(second.url, 'SELECT note FROM kept')).toEqual([{ note: 'survives a restart' }]);
    await second.stop();
    await expect(stat(join(dataDir, 'PG_VERSION'))).resolves.toBeTruthy();
  });

  it('deletes the data directory on stop when not persistent', async () => {
    const dataDir = join(await tempDir(), 'throwaway');
    const server = await startEmbeddedPostgres({ dataDir, persistent: false, settings: { fsync: 'off' } });
    running.push(server);
    expect(await query(server.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await server.stop();
    await expect(stat(dataDir)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a non-empty directory that holds no cluster', async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, 'notes.txt'), 'not a database');
    await expect(startEmbeddedPostgres({ dataDir, persistent: true })).rejects.toMatchObject({
      code: 'SY_STORAGE_EMBEDDED_POSTGRES',
    });
  });

  // CI once failed here: a port picked free was taken before Postgres bound it, and the start failed.
  it('picks another port when the one it picked is taken before Postgres binds it', async () => {
    const taken = await takenPort();
    try {
      const picked: number[] = [];
      const server = await startEmbeddedPostgres(
        { dataDir: join(await tempDir(), 'retried'), persistent: false, settings: { fsync: 'off' } },
        async () => {
          const port = picked.length === 0 ? taken.port : await freePort();
          picked.push(port);
          return port;
        },
      );
      running.push(server);
      expect(picked).toHaveLength(2);
      expect(server.port).toBe(picked[1]);
      expect(await query(server.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await server.stop();
    } finally {
      taken.server.close();
    }
  });

  it("names Postgres's reason when the port the caller chose is taken", async () => {
    const taken = await takenPort();
    try {
      const start = startEmbeddedPostgres({
        dataDir: join(await tempDir(), 'refused'),
        persistent: false,
        port: taken.port,
        settings: { fsync: 'off' },
      });
      await expect(start).rejects.toMatchObject({
        code: 'SY_STORAGE_EMBEDDED_POSTGRES',
        message: expect.stringContaining(
          `the server did not start on port ${taken.port}: could not create any TCP/IP sockets`,
        ),
      });
    } finally {
      taken.server.close();
    }
  });
});
