import { describe, expect, it } from 'vitest';
import { problemFromError } from './errors.ts';

describe('problemFromError', () => {
  it('names a field once when several of its keywords fail with the same words (x-message)', () => {
    // A cursor past the largest bigint fails both its `maxLength` and its `pattern`, and both say
    // the field's own words: the answer repeated them ("… earlier page; … earlier page").
    const cursor = { type: 'string', maxLength: 20, pattern: '^[0-9]+$', 'x-message': 'must be a cursor' };
    const { problem } = problemFromError(
      {
        validationContext: 'querystring',
        validation: [
          {
            keyword: 'maxLength',
            instancePath: '/cursor',
            message: 'must NOT have more than 20 characters',
            parentSchema: cursor,
          },
          {
            keyword: 'pattern',
            instancePath: '/cursor',
            message: 'must match pattern',
            parentSchema: cursor,
          },
          { keyword: 'minimum', instancePath: '/limit', message: 'must be >= 1' },
        ],
      },
      '/v1/events',
    );
    expect(problem.detail).toBe('querystring/cursor must be a cursor; querystring/limit must be >= 1');
    expect(problem.errors).toEqual([
      { in: 'querystring', pointer: '/cursor', message: 'must be a cursor' },
      { in: 'querystring', pointer: '/limit', message: 'must be >= 1' },
    ]);
  });
});
