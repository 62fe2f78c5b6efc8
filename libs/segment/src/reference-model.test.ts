import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '@segment/model';
import { ReferenceModel, replay } from './reference-model.ts';

const planes = { vendor: 42, name: 'planes' };
const trains = { vendor: 32, name: 'trains' };

let sequence = 0;
/** An add of `user` to `segment` at `timestamp`, with a fresh event id unless one is given. */
function add(user: string, segment: Event['segment'], timestamp: string, extra: Partial<Event> = {}): Event {
  return { event: uuid(sequence++), timestamp, user, segment, ...extra };
}

function remove(user: string, segment: Event['segment'], timestamp: string, extra: Partial<Event> = {}): Event {
  return { event: uuid(sequence++), timestamp, user, segment, remove: true, ...extra };
}

function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

describe('reference model - memberships', () => {
  test('first and last compare as instants, not as strings, across offsets', () => {
    // Given an add at 03:00Z and a later add at 00:00-04:00 (= 04:00Z), which sorts first as a string
    const early = add('alice', planes, '2021-01-01T03:00:00Z');
    const late = add('alice', planes, '2021-01-01T00:00:00-04:00');

    // When they are replayed in either order
    for (const events of [[early, late], [late, early]]) {
      const { memberships } = replay(events);

      // Then first is the 03:00Z add and last the -04:00 one, both as originally written
      assert.equal(memberships.length, 1);
      assert.equal(memberships[0]?.first, '2021-01-01T03:00:00Z');
      assert.equal(memberships[0]?.last, '2021-01-01T00:00:00-04:00');
    }
  });

  test('on equal instants the earlier-written timestamp string stays', () => {
    // Given two adds at the same instant, written in different forms
    const events = [add('alice', planes, '2021-01-01T04:00:00Z'), add('alice', planes, '2021-01-01T00:00:00-04:00')];

    // When replayed
    const [membership] = replay(events).memberships;

    // Then both first and last keep the first form written
    assert.equal(membership?.first, '2021-01-01T04:00:00Z');
    assert.equal(membership?.last, '2021-01-01T04:00:00Z');
  });

  test('member is the last written status, even when its timestamp is older', () => {
    // Given an add, then a removal stamped earlier than it
    const events = [add('alice', planes, '2021-01-02T00:00:00Z'), remove('alice', planes, '2021-01-01T00:00:00Z')];

    // When replayed
    const [membership] = replay(events).memberships;

    // Then the removal decides member, while last stays the latest instant
    assert.deepEqual(membership, {
      segment: planes,
      user: 'alice',
      first: '2021-01-02T00:00:00Z',
      last: '2021-01-02T00:00:00Z',
      member: false,
    });
  });

  test('a value is not erased by a removal or by an add without a value', () => {
    // Given an add with a value, a removal, and an add without a value
    const events = [
      add('alice', planes, '2021-01-01T00:00:00Z', { value: 'kept' }),
      remove('alice', planes, '2021-01-02T00:00:00Z'),
      add('alice', planes, '2021-01-03T00:00:00Z'),
    ];

    // When replayed
    const [membership] = replay(events).memberships;

    // Then the value survives
    assert.equal(membership?.value, 'kept');
    assert.equal(membership?.member, true);
  });

  test('a later value replaces an earlier one', () => {
    const events = [
      add('alice', planes, '2021-01-01T00:00:00Z', { value: 'old' }),
      add('alice', planes, '2021-01-02T00:00:00Z', { value: 'new' }),
    ];

    assert.equal(replay(events).memberships[0]?.value, 'new');
  });

  test('a removal with no add has a last but no first and no value', () => {
    const [membership] = replay([remove('carly', planes, '2021-01-01T00:00:00Z')]).memberships;

    assert.deepEqual(membership, { segment: planes, user: 'carly', last: '2021-01-01T00:00:00Z', member: false });
  });

  test('an event whose id was already seen is ignored entirely', () => {
    // Given an add, and a removal that reuses the add's event id
    const first = add('alice', planes, '2021-01-01T00:00:00Z', { value: 'original' });
    const duplicate = { ...remove('alice', planes, '2021-01-02T00:00:00Z'), event: first.event };

    // When both are replayed
    const result = replay([first, duplicate]);

    // Then only the first event counts, in every collection
    assert.deepEqual(result.events, [first]);
    assert.equal(result.memberships[0]?.member, true);
    assert.equal(result.memberships[0]?.last, '2021-01-01T00:00:00Z');
    assert.equal(result.profiles[0]?.segments[0]?.member, true);
    assert.deepEqual(result.toggles, []);
  });

  test('memberships are ordered by vendor, then name, then user by code point', () => {
    // Given users whose UTF-16 order differs from their code point order
    const events = [
      add('\u{1F600}', planes, '2021-01-01T00:00:00Z'),
      add('\uFF5E', planes, '2021-01-01T00:00:00Z'),
      add('bob', trains, '2021-01-01T00:00:00Z'),
      add('alice', { vendor: 42, name: 'autos' }, '2021-01-01T00:00:00Z'),
    ];

    // When replayed
    const keys = replay(events).memberships.map((m) => [m.segment.vendor, m.segment.name, m.user]);

    // Then U+1F600 sorts after U+FF5E, as Postgres COLLATE "C" would
    assert.deepEqual(keys, [
      [32, 'trains', 'bob'],
      [42, 'autos', 'alice'],
      [42, 'planes', '\uFF5E'],
      [42, 'planes', '\u{1F600}'],
    ]);
  });
});

describe('reference model - profiles', () => {
  test('profiles are ordered by user in code point order', () => {
    const events = [add('\u{1F600}', planes, '2021-01-01T00:00:00Z'), add('\uFF5E', planes, '2021-01-01T00:00:00Z')];

    assert.deepEqual(
      replay(events).profiles.map((p) => p.user),
      ['\uFF5E', '\u{1F600}'],
    );
  });

  test('segments are one per (name, vendor), sorted by name then vendor', () => {
    // Given events in several segments, two sharing a name across vendors, one repeated
    const events = [
      add('alice', { vendor: 52, name: 'trains' }, '2021-01-01T00:00:00Z'),
      add('alice', trains, '2021-01-01T00:00:00Z'),
      add('alice', planes, '2021-01-01T00:00:00Z', { value: 'v' }),
      remove('alice', planes, '2021-01-02T00:00:00Z'),
      add('alice', { vendor: 1, name: 'Zebras' }, '2021-01-01T00:00:00Z'),
    ];

    // When replayed
    const [profile] = replay(events).profiles;

    // Then segments are sorted by name (code point: uppercase first), then vendor, and each is reduced
    assert.deepEqual(
      profile?.segments.map((s) => [s.segment.name, s.segment.vendor]),
      [
        ['Zebras', 1],
        ['planes', 42],
        ['trains', 32],
        ['trains', 52],
      ],
    );
    assert.deepEqual(profile?.segments[1], {
      segment: planes,
      first: '2021-01-01T00:00:00Z',
      last: '2021-01-02T00:00:00Z',
      member: false,
      value: 'v',
    });
  });
});

describe('reference model - toggles', () => {
  test('a removal before any add never toggles', () => {
    // Given bob removed before ever being added, then added
    const events = [remove('bob', trains, '2021-01-01T00:00:00Z'), add('bob', trains, '2021-01-02T00:00:00Z')];

    // When replayed
    const { toggles } = replay(events);

    // Then the add is no toggle: bob had not been added before it
    assert.deepEqual(toggles, []);
  });

  test('once added, a later removal toggles even if the register began with a removal', () => {
    const events = [
      remove('bob', trains, '2021-01-01T00:00:00Z'),
      add('bob', trains, '2021-01-02T00:00:00Z'),
      remove('bob', trains, '2021-01-03T00:00:00Z'),
    ];

    const { toggles } = replay(events);

    assert.deepEqual(toggles, [{ ...events[2]!, previous: events[1]! }]);
  });

  test('repeats do not toggle; a status change after an add does, carrying the previous event', () => {
    // Given add, add, remove, remove, add
    const a1 = add('alice', trains, '2021-01-01T00:00:00Z');
    const a2 = add('alice', trains, '2021-01-01T00:00:00Z');
    const r1 = remove('alice', trains, '2021-01-02T00:00:00Z');
    const r2 = remove('alice', trains, '2021-01-02T00:00:00Z');
    const a3 = add('alice', trains, '2021-01-03T00:00:00Z', { value: 'back' });

    // When replayed
    const { toggles } = replay([a1, a2, r1, r2, a3]);

    // Then the first removal and the re-add toggle, each with the whole previous event
    assert.deepEqual(toggles, [
      { ...r1, previous: a2 },
      { ...a3, previous: r2 },
    ]);
  });

  test('toggles are per (vendor, name, user) and ordered by event id', () => {
    const later = { ...add('alice', planes, '2021-01-01T00:00:00Z'), event: uuid(0xfff0) };
    const earlier = { ...add('bob', trains, '2021-01-01T00:00:00Z'), event: uuid(0xfff1) };
    const events = [
      later,
      earlier,
      // alice is removed from trains, where she never was: no toggle
      remove('alice', trains, '2021-01-02T00:00:00Z', { event: uuid(0xfff2) }),
      remove('bob', trains, '2021-01-02T00:00:00Z', { event: uuid(0xfff4) }),
      remove('alice', planes, '2021-01-02T00:00:00Z', { event: uuid(0xfff3) }),
    ];

    assert.deepEqual(
      replay(events).toggles.map((t) => [t.event, t.previous.event]),
      [
        [uuid(0xfff3), uuid(0xfff0)],
        [uuid(0xfff4), uuid(0xfff1)],
      ],
    );
  });
});

describe('reference model - incremental ingest', () => {
  test('ingesting in batches gives the same result as one replay', () => {
    const events = [
      add('alice', planes, '2021-01-01T00:00:00Z', { value: 'a' }),
      remove('alice', planes, '2021-01-02T00:00:00Z'),
      add('bob', trains, '2021-01-01T00:00:00Z'),
      add('alice', planes, '2021-01-03T00:00:00Z'),
    ];

    const model = new ReferenceModel();
    model.ingest(events.slice(0, 2));
    model.ingest(events.slice(1)); // overlaps: the repeated event is a duplicate

    assert.deepEqual(model.snapshot(), replay(events));
  });

  test('reads are copies: mutating them or the ingested events changes nothing', () => {
    const event = add('alice', planes, '2021-01-01T00:00:00Z');
    const model = new ReferenceModel();
    model.ingest([event]);

    event.user = 'mallory';
    model.memberships[0]!.member = false;

    assert.equal(model.memberships[0]?.user, 'alice');
    assert.equal(model.memberships[0]?.member, true);
  });
});
