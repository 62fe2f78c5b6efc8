import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { DocumentValidationError, formatFieldError, validators } from './index.ts';
import { generateSchemaTypes } from '../../../schemas/scripts/generate-types.ts';

const valid = { event: '11111111-2222-3333-4444-000000000000', timestamp: '2021-01-16T12:34:56-04:00', user: 'alice', segment: { vendor: 42, name: 'planes' } };

function errorsOf(document: unknown): string[] {
  const result = validators.event.check(document);
  return result.ok ? [] : result.errors.map(formatFieldError);
}

test('event schema - accepts the DESIGN contract: adds with or without value, removes without', () => {
  assert.deepEqual(errorsOf(valid), []);
  assert.deepEqual(errorsOf({ ...valid, value: 'v' }), []);
  assert.deepEqual(errorsOf({ ...valid, remove: true }), []);
  assert.deepEqual(errorsOf({ ...valid, user: '\u{1F600} any string', segment: { vendor: 1, name: 'x'.repeat(32) } }), []);
});

test('event schema - errors name the field and the rule', () => {
  assert.deepEqual(errorsOf({ ...valid, segment: { vendor: 0, name: 'planes' } }), ['/segment/vendor: must be >= 1']);
  assert.deepEqual(errorsOf({ ...valid, segment: { vendor: 1.5, name: '' } }), ['/segment/vendor: must be integer', '/segment/name: must NOT have fewer than 1 characters']);
  assert.deepEqual(errorsOf({ ...valid, segment: { vendor: 1, name: 'x'.repeat(33) } }), ['/segment/name: must NOT have more than 32 characters']);
  assert.deepEqual(errorsOf({ ...valid, remove: false }), ['/remove: must be true']);
  assert.deepEqual(errorsOf({ ...valid, remove: true, value: 'v' }), ['/value: is not allowed when /remove is given']);
  assert.deepEqual(errorsOf({ ...valid, extra: 1 }), ['/extra: is not allowed']);
  const { user: _user, ...withoutUser } = valid;
  assert.deepEqual(errorsOf(withoutUser), ['/user: is required']);
  assert.deepEqual(errorsOf({ ...valid, event: 'not-a-uuid' }), ['/event: must match format "uuid"']);
  assert.deepEqual(errorsOf({ ...valid, timestamp: '2021-01-16 12:34' }), ['/timestamp: must match format "date-time"']);
  assert.deepEqual(errorsOf({ ...valid, timestamp: '2021-01-16T12:34:56' }), ['/timestamp: must match format "date-time"']);
  // ajv-formats' date-time takes these; no reduction could order them, so an event with one is rejected at the door.
  assert.deepEqual(errorsOf({ ...valid, timestamp: '2021-01-16T12:34:56+05' }), ['/timestamp: must match format "date-time"']);
  assert.deepEqual(errorsOf({ ...valid, timestamp: '2021-01-16T12:34:56+0530' }), ['/timestamp: must match format "date-time"']);
  assert.deepEqual(errorsOf({ ...valid, user: 'a\uD800' }), ['/user: must match format "unicode"']);
});

test('validators - assert throws an error with a stable code and every field error', () => {
  assert.throws(() => validators.event.assert({ ...valid, segment: { vendor: 0, name: '' } }), (error: unknown) => {
    assert.ok(error instanceof DocumentValidationError);
    assert.equal(error.code, 'SEGMENT_INVALID_DOCUMENT');
    assert.equal(error.errors.length, 2);
    assert.match(error.message, /\/segment\/vendor: must be >= 1/);
    return true;
  });
});

test('derived schemas - memberships, profiles, toggles and registers validate their documents', () => {
  const segment = valid.segment;
  assert.ok(validators.membership.check({ segment, user: 'u', last: valid.timestamp, member: false }).ok);
  assert.ok(!validators.membership.check({ segment, last: valid.timestamp, member: false }).ok);
  assert.ok(validators.profile.check({ user: 'u', segments: [{ segment, last: valid.timestamp, member: true, first: valid.timestamp }] }).ok);
  assert.ok(validators.toggle.check({ ...valid, remove: true, previous: valid }).ok);
  assert.ok(!validators.toggle.check(valid).ok);
  const { user: _user, segment: _segment, ...keyed } = valid;
  assert.ok(validators.toggleRegister.check({ last: keyed, added: true }).ok);
  assert.ok(!validators.toggleRegister.check({ last: valid, added: true }).ok, 'the last event is kept without its key');
});

test('types - the generated TypeScript types are current with schemas/ (run `npm run schemas:types`)', async () => {
  const committed = await readFile(new URL('./schema-types.generated.ts', import.meta.url), 'utf8');
  assert.equal(committed, await generateSchemaTypes());
});
