import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validators, type Event } from '@segment/model';
import { applyEvent, membershipsDerivation, profilesDerivation, pushProfilesDerivation, shuffleKeyOf, togglesDerivation, type Derivation } from './index.ts';

const trains = { vendor: 32, name: 'trains' };
const planes = { vendor: 42, name: 'planes' };
let nextId = 0;
function event(user: string, segment: { vendor: number; name: string }, options: { remove?: true; value?: string; timestamp?: string } = {}): Event {
  const id = `11111111-2222-3333-4444-${String(nextId++).padStart(12, '0')}`;
  const { timestamp = '2021-01-16T12:34:56Z', ...rest } = options;
  return { event: id, timestamp, user, segment, ...rest };
}

/** Given events, when a derivation runs over them: its registers by key and every output, in order. */
function run<R, O>(derivation: Derivation<R, O>, events: Event[]) {
  const registers = new Map<string, R>();
  const outputs: O[] = [];
  for (const e of events) {
    const key = shuffleKeyOf(derivation, e);
    const before = registers.get(key) ?? (derivation.register?.initial as R);
    const result = applyEvent(derivation, e, before);
    if (derivation.register) registers.set(key, result.after);
    outputs.push(...result.outputs);
  }
  for (const output of outputs) validators[derivation.outputSchema].assert(output);
  return { registers, outputs };
}

test('memberships - each event publishes its detail with the user', () => {
  const { outputs, registers } = run(membershipsDerivation, [
    event('alice', planes, { value: 'v' }),
    event('bob', trains, { remove: true }),
  ]);
  assert.equal(registers.size, 0);
  assert.deepEqual(outputs, [
    { segment: planes, first: '2021-01-16T12:34:56Z', last: '2021-01-16T12:34:56Z', member: true, value: 'v', user: 'alice' },
    { segment: trains, last: '2021-01-16T12:34:56Z', member: false, user: 'bob' },
  ]);
});

test('profiles - each event publishes a partial profile holding its segment', () => {
  const { outputs } = run(profilesDerivation, [event('alice', planes, { remove: true })]);
  assert.deepEqual(outputs, [{ user: 'alice', segments: [{ segment: planes, last: '2021-01-16T12:34:56Z', member: false }] }]);
});

test('toggles - a removal before any add never toggles, nor does the first add after it', () => {
  const { outputs, registers } = run(togglesDerivation, [event('bob', trains, { remove: true }), event('bob', trains)]);
  assert.deepEqual(outputs, []);
  const register = registers.get(shuffleKeyOf(togglesDerivation, event('bob', trains)));
  assert.equal(register?.added, true);
  assert.equal(register?.last?.remove, undefined);
});

test('toggles - repeats do not toggle; a change of status after an add does, carrying the previous event', () => {
  const add = event('alice', trains);
  const repeat = event('alice', trains);
  const remove = event('alice', trains, { remove: true });
  const removeAgain = event('alice', trains, { remove: true });
  const addAgain = event('alice', trains, { timestamp: '2021-01-18T12:34:56Z' });
  const { outputs } = run(togglesDerivation, [add, repeat, remove, removeAgain, addAgain]);
  assert.deepEqual(outputs, [
    { ...remove, previous: repeat },
    { ...addAgain, previous: removeAgain },
  ]);
});

test('toggles - registers are per (vendor, segment, user)', () => {
  const { outputs, registers } = run(togglesDerivation, [
    event('alice', trains),
    event('alice', planes, { remove: true }),
    event('alice', { vendor: 33, name: 'trains' }, { remove: true }),
    event('bob', trains, { remove: true }),
  ]);
  assert.deepEqual(outputs, []);
  assert.equal(registers.size, 4);
});

test('push profiles - every event publishes the complete current profile', () => {
  const { outputs } = run(pushProfilesDerivation, [
    event('alice', trains),
    event('alice', planes, { value: 'v' }),
    event('alice', trains, { remove: true, timestamp: '2021-01-17T12:34:56Z' }),
  ]);
  assert.equal(outputs.length, 3);
  assert.deepEqual(outputs[2], {
    user: 'alice',
    segments: [
      { segment: planes, first: '2021-01-16T12:34:56Z', last: '2021-01-16T12:34:56Z', member: true, value: 'v' },
      { segment: trains, first: '2021-01-16T12:34:56Z', last: '2021-01-17T12:34:56Z', member: false },
    ],
  });
});

test('shuffle keys - distinct values never collide, whatever characters they hold', () => {
  const a = event('z.x', { vendor: 1, name: 'y' });
  const b = event('x', { vendor: 1, name: 'y.z' });
  assert.notEqual(shuffleKeyOf(togglesDerivation, a), shuffleKeyOf(togglesDerivation, b));
});
