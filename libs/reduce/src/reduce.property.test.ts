// Property tests: a reduction must not care how a key's documents are grouped, only their order,
// since transactions combine any run of documents and projectors reduce those runs again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareByKey, profileSegmentKey, type Event, type Membership, type Profile, type SegmentDetail, type Toggle, type ToggleRegister } from '@segment/model';
import { reductionOf, type Reduction } from './index.ts';

// A few instants written in several offsets, so equal instants with different strings occur.
const timestamp = fc
  .record({ hour: fc.integer({ min: 0, max: 3 }), offset: fc.constantFrom('Z', '+00:00', '-04:00', '+05:30'), frac: fc.constantFrom('', '.5', '.500', '.123456') })
  .map(({ hour, offset, frac }) => `2021-01-01T${String(10 + hour).padStart(2, '0')}:00:00${frac}${offset}`);
const segment = fc.record({ vendor: fc.integer({ min: 1, max: 3 }), name: fc.constantFrom('a', 'b', '\uFF5E', '\u{1F600}') });
const detail: fc.Arbitrary<SegmentDetail> = fc.record(
  { segment, first: timestamp, last: timestamp, member: fc.boolean(), value: fc.string({ maxLength: 3 }) },
  { requiredKeys: ['segment', 'last', 'member'] },
);
const membership: fc.Arbitrary<Membership> = fc.tuple(detail, fc.constantFrom('u', 'v')).map(([d, user]) => ({ ...d, user }));
const profile: fc.Arbitrary<Profile> = fc.record({
  user: fc.constantFrom('u', 'v'),
  segments: fc
    .array(detail, { maxLength: 5 })
    .map((segments) => segments.sort((a, b) => compareByKey(profileSegmentKey, a, b)).filter((s, i, all) => i === 0 || compareByKey(profileSegmentKey, all[i - 1], s) !== 0)),
});
const event: fc.Arbitrary<Event> = fc
  .record({ event: fc.uuid(), timestamp, user: fc.constantFrom('u', 'v'), segment, remove: fc.boolean() })
  .map(({ remove, ...rest }) => (remove ? { ...rest, remove: true as const } : rest));
const keyedEvent = event.map(({ user: _user, segment: _segment, ...keyed }) => keyed);
const toggleRegister: fc.Arbitrary<ToggleRegister> = fc.record({ last: keyedEvent, added: fc.boolean() }, { requiredKeys: [] });
const toggle: fc.Arbitrary<Toggle> = fc.tuple(event, event).map(([e, previous]) => ({ ...e, previous }));

const cases = [
  ['membership', membership],
  ['profile', profile],
  ['toggleRegister', toggleRegister],
  ['toggle', toggle],
] as const;

for (const [name, documents] of cases) {
  const reduceOf = reductionOf(name) as Reduction<unknown>;

  test(`reduce - ${name} reduction is associative`, () => {
    fc.assert(
      fc.property(documents, documents, documents, (a, b, c) => {
        assert.deepEqual(reduceOf(reduceOf(a, b), c), reduceOf(a, reduceOf(b, c)));
      }),
      { numRuns: 500 },
    );
  });

  test(`reduce - ${name}: combining any grouping of a key's documents in order equals reducing them one by one`, () => {
    fc.assert(
      fc.property(fc.array(documents as fc.Arbitrary<unknown>, { minLength: 1, maxLength: 12 }), fc.array(fc.boolean(), { maxLength: 12 }), (docs, cuts) => {
        const oneByOne = docs.reduce<unknown>((acc, doc) => reduceOf(acc, doc), undefined);
        const groups: unknown[][] = [[]];
        docs.forEach((doc, i) => {
          groups.at(-1)!.push(doc);
          if (cuts[i]) groups.push([]);
        });
        const combined = groups
          .filter((group) => group.length > 0)
          .map((group) => group.reduce<unknown>((acc, doc) => reduceOf(acc, doc), undefined))
          .reduce<unknown>((acc, part) => reduceOf(acc, part), undefined);
        assert.deepEqual(combined, oneByOne);
      }),
      { numRuns: 500 },
    );
  });
}
