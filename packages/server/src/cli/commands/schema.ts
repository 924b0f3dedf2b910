import { buildConfigSchema } from '../../config/schema.ts';
import type { Command } from '../command.ts';

/** `switchyard schema`: print the config file's JSON Schema (for editors and other tools). */
export const schemaCommand: Command = {
  name: 'schema',
  summary: "print the config file's JSON Schema (with every shipped connector's settings)",
  usage: '',
  options: {},
  async run(_args, io) {
    const { shippedConnectors } = await import('../../connectors.ts');
    io.stdout.write(`${JSON.stringify(buildConfigSchema(shippedConnectors), null, 2)}\n`);
    return 0;
  },
};
