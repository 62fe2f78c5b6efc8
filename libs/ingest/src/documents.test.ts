import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNdjsonBody } from './body.ts';
import { checkBatch, checkDocument } from './documents.ts';
import { openGrant, type TokenGrant } from './tokens.ts';

const valid = { event: '49ee9dde-e31d-d67c-1eae-fb28527794f6', timestamp: '2021-03-19T13:32:26-04:00', user: 'usr-01a268', segment: { vendor: 10, name: 'seg-9' } };
const item = (value: unknown) => ({ index: 0, ok: true as const, value });

test('checkDocument - a valid event passes; each broken rule is named by its field', () => {
  assert.deepEqual(checkDocument(item(valid), openGrant), { ok: true, event: valid });
  const cases: [unknown, string[]][] = [
    [{ ...valid, segment: { vendor: 0, name: 'seg-9' } }, ['/segment/vendor: must be >= 1']],
    [{ ...valid, segment: { vendor: 1, name: '' } }, ['/segment/name: must NOT have fewer than 1 characters']],
    [{ ...valid, remove: true, value: 'v' }, ['/value: is not allowed when /remove is given']],
    [{ ...valid, remove: false }, ['/remove: must be true']],
    [{ ...valid, event: 'nope' }, ['/event: must match format "uuid"']],
    [{ timestamp: valid.timestamp, user: 'u', segment: valid.segment }, ['/event: is required']],
    [[valid], ['/: must be object']],
  ];
  for (const [document, errors] of cases) assert.deepEqual(checkDocument(item(document), openGrant), { ok: false, reason: 'schema', errors }, JSON.stringify(document));
  assert.deepEqual(checkDocument({ index: 3, ok: false, error: 'line 4 is not JSON: x' }, openGrant), { ok: false, reason: 'json', errors: ['line 4 is not JSON: x'] });
});

test('checkBatch - splits accepted, invalid and forbidden documents, keeping positions', () => {
  const grant: TokenGrant = { vendors: new Set([10]) };
  const body = [valid, { ...valid, segment: { vendor: 0, name: 'x' } }, { ...valid, segment: { vendor: 11, name: 'x' } }].map((d) => JSON.stringify(d)).join('\n') + '\n\nnot json';
  const { accepted, invalid, forbidden } = checkBatch(parseNdjsonBody(Buffer.from(body)), grant);
  assert.deepEqual(accepted, [{ index: 0, event: valid, source: Buffer.from(JSON.stringify(valid)) }]);
  assert.deepEqual(invalid.map((r) => [r.index, r.line]), [[1, 2], [3, 5]]);
  assert.deepEqual(forbidden, [{ index: 2, line: 3, errors: ['/segment/vendor: vendor 11 is not allowed for this token'] }]);
});
