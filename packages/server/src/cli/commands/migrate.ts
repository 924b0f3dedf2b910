import { type Command, configOption } from '../command.ts';

/** `switchyard migrate`: brings the database schema up to date and exits (a deploy step). */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply the database migrations and exit (start also does it)',
  usage: '[--config FILE]',
  details: [
    'Options:',
    '  -c, --config FILE   the config file (its database.url, DATABASE_URL, or the embedded Postgres)',
    '',
    'Migrations run under an advisory lock: safe while other processes start or run.',
  ].join('\n'),
  options: { ...configOption },
  async run(args, io) {
    const { createLogger } = await import('../../logging/logger.ts');
    const { loadForCommand, NOTHING_DONE, reportEmbeddedDatabase, reportUnreachableDatabase } = await import(
      '../hub.ts'
    );
    const { openHubDatabase } = await import('../../runtime/database.ts');
    const { openDatabase } = await import('../../storage/db.ts');
    const { migrate, migrations } = await import('../../storage/migrations.ts');
    const loaded = await loadForCommand(args, io, 'database', NOTHING_DONE);
    if (typeof loaded === 'number') return loaded;
    const logger = createLogger({ level: 'warn', secrets: loaded.secrets, destination: io.stderr });
    const database = await openHubDatabase(loaded.config, { logger });
    reportEmbeddedDatabase(io, database);
    try {
      const { db, close } = openDatabase(database.url, { max: 1 });
      try {
        let applied: number[];
        try {
          applied = await migrate(db, { logger });
        } catch (error) {
          const code = reportUnreachableDatabase(io, loaded.secrets, error);
          if (code === undefined) throw error;
          return code;
        }
        const latest = Math.max(...migrations.map((m) => m.version));
        io.stdout.write(
          applied.length > 0
            ? `applied migrations ${applied.join(', ')}; the schema is at version ${latest}\n`
            : `the schema is up to date (version ${latest})\n`,
        );
        return 0;
      } finally {
        await close();
      }
    } finally {
      await database.release();
    }
  },
};
