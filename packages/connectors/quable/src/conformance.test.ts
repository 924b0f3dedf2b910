import { describeConformance } from '@switchyard/testing';
import type { Config } from './config.ts';
import { quableConnector } from './index.ts';

const AUTHORIZATION = 'Bearer qb-test-0123456789abcdef';

describeConformance<Config>({
  connector: quableConnector,
  config: { authorization: AUTHORIZATION },
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { headers: { authorization: AUTHORIZATION } },
    wrong: [
      { headers: { authorization: 'Bearer qb-test-wrong-000000000' } },
      { headers: { authorization: 'bearer qb-test-0123456789abcdef' } },
      { headers: { authorization: 'qb-test-0123456789abcdef' } },
      { headers: { authorization: '' } },
    ],
    missing: {},
  },
  fixtures: [
    { file: 'document-create.json', expect: ['document.created'] },
    { file: 'media-create.json', expect: ['asset.created'] },
    { file: 'document-update.json', expect: ['document.updated'] },
    { file: 'media-update.json', expect: ['asset.updated'] },
    {
      file: 'doc-example-document-update.json',
      expect: ['document.updated'],
      description: 'the example on the vendor page',
    },
    { file: 'bulk-edit-finish.json', expect: ['process.completed'] },
    { file: 'import-finish.json', expect: ['process.completed'] },
    { file: 'export-finish.json', expect: ['process.completed'] },
    { file: 'variant-update-ignored.json', expect: 'ignored' },
    { file: 'link-create-ignored.json', expect: 'ignored' },
    { file: 'classification-update-ignored.json', expect: 'ignored' },
    { file: 'value-update-ignored.json', expect: 'ignored' },
    { file: 'document-delete.json', expect: ['document.deleted'] },
    { file: 'media-delete.json', expect: ['asset.deleted'] },
  ],
  malformedBodies: ['{"uuid":"ce6c64a3-4f27-4b0e-862c-ee780eae06d1"}', '{"code":""}'],
});
