import { openDatabase } from '../../packages/server/src/storage/db.ts';
import { migrate } from '../../packages/server/src/storage/migrations.ts';

const d = openDatabase(process.argv[2]!);
await migrate(d.db);
await d.close();
