import { describeConformance } from '@switchyard/testing';
import type { Config } from './config.ts';
import connector from './index.ts';

const API_KEY = 'test-api-key-0123456789abcdef';

describeConformance<Config>({
  connector,
  config: { apiKey: API_KEY },
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { headers: { 'x-api-key': API_KEY } },
    wrong: [{ headers: { 'x-api-key': 'test-api-key-wrong-0000000000' } }, { headers: { authorization: API_KEY } }],
    missing: {},
  },
  fixtures: [{ file: 'booking-created.json', expect: ['appointment.created'] }],
});
