import { describeConformance } from '@switchyard/testing';
import type { Config } from './config.ts';
import { instinctiveNotesConnector } from './index.ts';

const SECRET = 'in-test-secret-0123456789abcdef';

const fixtures = [
  {
    file: 'soap-note-created.json',
    expect: ['document.created'],
    description: 'the sample from the vendor page',
  },
  { file: 'soap-note-updated.json', expect: ['document.updated'], description: 'the same note amended' },
  {
    file: 'soap-note-draft.json',
    expect: ['document.created'],
    description: 'a draft (docStatus preliminary)',
  },
  { file: 'soap-note-without-exercises.json', expect: ['document.created'] },
  {
    file: 'send-test-soap-note-created.json',
    expect: ['document.created'],
    description: '"Send test": the last created note re-sent, marked data.test',
  },
  { file: 'invoice-created-unknown.json', expect: 'ignored' as const },
];

// Secret in a header, on the instance URL.
describeConformance<Config>({
  connector: instinctiveNotesConnector,
  config: { auth: { mode: 'header', secret: SECRET } },
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { headers: { 'x-instinctive-secret': SECRET } },
    wrong: [
      { headers: { 'x-instinctive-secret': 'in-test-secret-wrong-000000000' } },
      { headers: { 'x-instinctive-secret': '' } },
      { headers: { authorization: SECRET } },
      { params: { secret: SECRET } },
    ],
    missing: {},
  },
  fixtures,
});

// Secret as the last path segment (/hooks/{instance}/{secret}).
describeConformance<Config>({
  connector: instinctiveNotesConnector,
  config: { auth: { mode: 'path', secret: SECRET } },
  instanceId: 'conformance-path',
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { params: { secret: SECRET } },
    wrong: [
      { params: { secret: 'in-test-secret-wrong-000000000' } },
      { headers: { 'x-instinctive-secret': SECRET } },
    ],
    missing: {},
  },
  fixtures: fixtures.map((f) => ({ ...f, route: 'secret' })),
});
