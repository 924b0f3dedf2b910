import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkGenerated, type Generator, repoRoot, runGenerateCli, writeGenerated } from './codegen.ts';
import { coreGenerator, EVENT_ORDER, generateCoreFiles, loadCoreSchemas } from './core-generator.ts';

describe('core generated files', () => {
  it('are up to date (run pnpm generate when this fails)', async () => {
    expect(await checkGenerated([coreGenerator])).toEqual([]);
  });

  it('are deterministic', async () => {
    const first = await generateCoreFiles();
    const second = await generateCoreFiles();
    expect(second).toEqual(first);
  });

  it('declare every event data type, the type union and the catalog', async () => {
    const files = await generateCoreFiles();
    const events = files.find((f) => f.path.endsWith('src/generated/events.ts'))!.content;
    expect(events).toContain(
      'export type AppointmentCancelledData = Appointment & {\n  status?: "cancelled";\n};',
    );
    expect(events).toContain('previous: NonNullable<Appointment["previous"]>;');
    expect(events).toContain('export interface HubTestData {');
    for (const type of EVENT_ORDER) {
      expect(events).toContain(`  | ${JSON.stringify(type)}`);
      expect(events).toContain(`    type: ${JSON.stringify(type)},`);
    }
    const entities = files.find((f) => f.path.endsWith('src/generated/entities.ts'))!.content;
    // Shared definitions are declared once and referenced, not copied into each entity.
    expect(entities.match(/export interface VendorId \{/g)).toHaveLength(1);
    expect(entities).toContain('vendorIds: VendorId[];');
    const envelope = files.find((f) => f.path.endsWith('src/generated/envelope.ts'))!.content;
    expect(envelope).toMatch(/data: \{\n\s+\[k: string\]: unknown;\n\s+\};/);
  });

  it('write a catalog with meaning, vendor events and an example for every type', async () => {
    const doc = (await generateCoreFiles()).find((f) => f.path === 'docs/events.md')!.content;
    const set = await loadCoreSchemas();
    for (const event of set.events) {
      const start = doc.indexOf(`\n## ${event.type}\n`);
      expect(start, event.type).toBeGreaterThan(-1);
      const next = doc.indexOf('\n## ', start + 1);
      const section = doc.slice(start, next === -1 ? undefined : next);
      expect(section).toContain(event.schema.description as string);
      for (const vendor of event.schema['x-vendor-events'] as string[]) expect(section).toContain(vendor);
      expect(section).toContain('```json');
      expect(section).toContain(`"type": "${event.type}"`);
    }
    expect(doc).toContain('- `status` is `cancelled`');
    expect(doc).toContain('- `previous` is present');
  });
});

describe('generator framework', () => {
  let root: string;
  const files: Record<string, string> = { 'out/a.txt': 'A\n', 'out/nested/b.txt': 'B\n' };
  const generator: Generator = {
    name: 'test',
    ownedDirs: ['out'],
    outputs: async () => Object.entries(files).map(([path, content]) => ({ path, content })),
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'sy-codegen-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('names missing, outdated and orphaned files in check mode, and writes nothing', async () => {
    await mkdir(join(root, 'out'), { recursive: true });
    await writeFile(join(root, 'out/a.txt'), 'old\n');
    await writeFile(join(root, 'out/leftover.ts'), 'x');
    expect(await checkGenerated([generator], root)).toEqual([
      { path: 'out/a.txt', generator: 'test', reason: 'outdated' },
      { path: 'out/leftover.ts', generator: 'test', reason: 'orphaned' },
      { path: 'out/nested/b.txt', generator: 'test', reason: 'missing' },
    ]);
    expect(await readFile(join(root, 'out/a.txt'), 'utf8')).toBe('old\n');
  });

  it('writes what changed, deletes orphans, and is then clean', async () => {
    await mkdir(join(root, 'out'), { recursive: true });
    await writeFile(join(root, 'out/a.txt'), 'A\n');
    await writeFile(join(root, 'out/leftover.ts'), 'x');
    expect(await writeGenerated([generator], root)).toEqual({
      written: ['out/nested/b.txt'],
      deleted: ['out/leftover.ts'],
      unchanged: ['out/a.txt'],
    });
    expect(await readFile(join(root, 'out/nested/b.txt'), 'utf8')).toBe('B\n');
    expect(await checkGenerated([generator], root)).toEqual([]);
  });

  it('refuses two generators writing the same file, and paths outside the repository', async () => {
    await expect(checkGenerated([generator, { ...generator, name: 'other' }], root)).rejects.toThrow(
      /produced by both test and other/,
    );
    const escaping: Generator = { name: 'bad', outputs: async () => [{ path: '../x', content: '' }] };
    await expect(checkGenerated([escaping], root)).rejects.toThrow(/repository-relative/);
  });

  it('exits 1 naming stale files in --check mode, 0 once generated', async () => {
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    expect(await runGenerateCli([generator], ['--check'], root, log)).toBe(1);
    expect(lines.join('\n')).toContain('run pnpm generate');
    expect(lines.join('\n')).toContain('out/a.txt (missing, from test)');
    expect(await runGenerateCli([generator], [], root, log)).toBe(0);
    expect(await runGenerateCli([generator], ['--check'], root, log)).toBe(0);
    expect(await runGenerateCli([generator], ['--chek'], root, log)).toBe(2);
  });

  it('notices a schema edit: a changed description makes the core outputs stale', async () => {
    await cp(join(repoRoot, 'packages/core/schemas'), join(root, 'packages/core/schemas'), {
      recursive: true,
    });
    const core: Generator = { ...coreGenerator, outputs: () => generateCoreFiles(root) };
    await writeGenerated([core], root);
    expect(await checkGenerated([core], root)).toEqual([]);
    const path = join(root, 'packages/core/schemas/events/slot.blocked.schema.json');
    const schema = JSON.parse(await readFile(path, 'utf8'));
    schema.description = 'Changed.';
    await writeFile(path, JSON.stringify(schema));
    expect((await checkGenerated([core], root)).map((s) => s.path)).toEqual([
      'docs/events.md',
      'packages/core/src/generated/events.ts',
    ]);
  });

  it('refuses an event schema file that EVENT_ORDER does not list', async () => {
    await cp(join(repoRoot, 'packages/core/schemas'), join(root, 'packages/core/schemas'), {
      recursive: true,
    });
    await writeFile(
      join(root, 'packages/core/schemas/events/appointment.teleported.schema.json'),
      JSON.stringify({ $id: 'https://switchyard.dev/schemas/events/appointment.teleported.json' }),
    );
    await expect(generateCoreFiles(root)).rejects.toThrow(/not listed: \[appointment.teleported\]/);
  });
});
