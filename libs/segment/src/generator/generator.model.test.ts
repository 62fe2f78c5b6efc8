import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validators, type Event } from '@segment/model';
import { EventGenerator, exampleModel, isBotUser } from './generator.model.ts';
import { tickClock } from './format-timestamp.ts';

const start = Date.parse('2021-03-19T17:32:26Z');
const fixed = (overrides: Partial<typeof exampleModel> = {}) =>
  new EventGenerator({ ...overrides, clock: tickClock(start, 10), utcOffsetMinutes: () => -240 });

const segmentNumber = (event: Event) => parseInt(event.segment.name.slice('seg-'.length), 16);
const userNumber = (event: Event) => parseInt(event.user.slice('usr-'.length), 16);
const sampleKey = (event: Event) => `${event.segment.name} ${event.user} ${event.remove === true}`;

test('generator - 200,000 events of seed 7 are valid and follow the example model', () => {
  const generator = fixed({ seed: 7 });
  const n = 200_000;
  const seen = new Set<string>();
  const perSegment = new Map<number, number>();
  const users: number[] = [];
  let removes = 0;
  let repeats = 0;
  for (let i = 0; i < n; i++) {
    const event = generator.nextEvent();
    const checked = validators.event.check(event);
    assert.ok(checked.ok, `event ${i} is invalid: ${JSON.stringify(checked)}`);
    assert.match(event.event, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(event.user, /^usr-[0-9a-f]{6,}$/);
    assert.match(event.segment.name, /^seg-[0-9A-F]+$/);
    assert.equal(event.value, undefined);
    const segment = segmentNumber(event);
    assert.ok(segment >= 0 && segment <= 10_000);
    assert.equal(event.segment.vendor, 1 + (segment % 10));
    perSegment.set(segment, (perSegment.get(segment) ?? 0) + 1);
    users.push(userNumber(event));
    if (event.remove) removes++;
    const key = sampleKey(event);
    if (seen.has(key)) repeats++;
    else seen.add(key);
  }
  const share = (count: number) => count / n;
  assert.ok(Math.abs(share(removes) - 0.3) <= 0.02, `remove share ${share(removes)}`);
  assert.ok(share(repeats) >= 0.38, `repeat share ${share(repeats)}`);
  const seg0 = share(perSegment.get(0) ?? 0);
  assert.ok(seg0 >= 0.13 && seg0 <= 0.17, `seg-0 share ${seg0}`);
  const top10 = share([...perSegment.values()].sort((a, b) => b - a).slice(0, 10).reduce((a, b) => a + b, 0));
  assert.ok(top10 >= 0.36 && top10 <= 0.44, `top-10 share ${top10}`);
  users.sort((a, b) => a - b);
  const median = users[n / 2]!;
  assert.ok(median >= 60_000 && median <= 74_000, `median user ${median}`);
  assert.ok(users.at(-1)! <= 1_000_000);
});

test('generator - lines are the events as JSON in the example key order, remove last and only on removes', () => {
  const lines = fixed().nextLines(2_000).split('\n');
  assert.equal(lines.pop(), '');
  const events = fixed();
  for (const line of lines) assert.equal(line, JSON.stringify(events.nextEvent()));
  const add = lines.find((line) => !line.includes('remove'))!;
  const remove = lines.find((line) => line.includes('remove'))!;
  assert.deepEqual(Object.keys(JSON.parse(add)), ['event', 'timestamp', 'user', 'segment']);
  assert.deepEqual(Object.keys(JSON.parse(remove)), ['event', 'timestamp', 'user', 'segment', 'remove']);
  assert.match(remove, /"segment":\{"vendor":\d+,"name":"seg-[0-9A-F]+"\},"remove":true\}$/);
});

test('generator - timestamps start at the clock and carry the offset, at second resolution', () => {
  const generator = fixed();
  const stamps = Array.from({ length: 201 }, () => generator.nextEvent().timestamp);
  assert.equal(stamps[0], '2021-03-19T13:32:26-04:00');
  assert.equal(stamps[99], '2021-03-19T13:32:26-04:00');
  assert.equal(stamps[100], '2021-03-19T13:32:27-04:00');
  assert.equal(stamps[200], '2021-03-19T13:32:28-04:00');
});

test('generator - the same seed and clock give identical output; another seed differs', () => {
  assert.equal(fixed({ seed: 7 }).nextLines(5_000), fixed({ seed: 7 }).nextLines(5_000));
  assert.notEqual(fixed({ seed: 7 }).nextLines(100), fixed({ seed: 8 }).nextLines(100));
});

test('generator - the same seed with wall-clock time differs only in timestamps', () => {
  const withoutTime = (line: string) => line.replace(/"timestamp":"[^"]*"/, '');
  const wall = new EventGenerator({ seed: 7, clock: Date.now }).nextLines(1_000).split('\n').map(withoutTime);
  const ticked = fixed({ seed: 7 }).nextLines(1_000).split('\n').map(withoutTime);
  assert.deepEqual(wall, ticked);
});

test('generator - a repeat takes the sample but gets its own event id and timestamp', () => {
  const generator = fixed({ repeatProbability: 1 });
  const [first, ...rest] = Array.from({ length: 150 }, () => generator.nextEvent());
  for (const event of rest) {
    assert.equal(sampleKey(event), sampleKey(first!));
    assert.notEqual(event.event, first!.event);
  }
  assert.notEqual(rest.at(-1)!.timestamp, first!.timestamp);
});

test('generator - without a reservoir or repeat chance, samples are all drawn afresh', () => {
  for (const overrides of [{ reservoir: 0 }, { repeatProbability: 0 }]) {
    const generator = fixed({ ...overrides, users: 2 ** 31 - 1, userSigma: 5 });
    const keys = new Set(Array.from({ length: 5_000 }, () => sampleKey(generator.nextEvent())));
    assert.equal(keys.size, 5_000);
  }
});

test('generator - bots 0 is the example model, draw for draw', () => {
  assert.equal(fixed({ bots: 0, botUsers: 7, botBurst: 3 }).nextLines(5_000), fixed().nextLines(5_000));
});

test('generator - bots make up the given fraction of events, in bursts over a few segments', () => {
  const generator = fixed({ seed: 7, bots: 0.1 });
  const n = 200_000;
  let botEvents = 0;
  const perBot = new Map<string, number>();
  const bursts: { user: string; segments: Set<string>; length: number }[] = [];
  let previousUser = '';
  for (let i = 0; i < n; i++) {
    const event = generator.nextEvent();
    assert.ok(validators.event.check(event).ok);
    if (!isBotUser(event.user)) {
      previousUser = event.user;
      continue;
    }
    assert.match(event.user, /^bot-00[0-6][0-9a-f]$/);
    botEvents++;
    perBot.set(event.user, (perBot.get(event.user) ?? 0) + 1);
    if (event.user !== previousUser) bursts.push({ user: event.user, segments: new Set(), length: 0 });
    const burst = bursts.at(-1)!;
    burst.segments.add(event.segment.name);
    burst.length++;
    previousUser = event.user;
  }
  const share = botEvents / n;
  assert.ok(share >= 0.08 && share <= 0.12, `bot share ${share}`);
  assert.ok(perBot.size <= 100);
  const meanBurst = botEvents / bursts.length;
  assert.ok(meanBurst >= 30, `mean burst ${meanBurst}`);
  // Adjacent bursts of one bot merge above, so allow a few more than three segments.
  const overlong = bursts.filter((burst) => burst.segments.size > 6).length;
  assert.ok(overlong / bursts.length < 0.02);
  // The steep Zipf over bots: the busiest bot alone has far more than 1/100 of bot traffic.
  const busiest = Math.max(...perBot.values()) / botEvents;
  assert.ok(busiest >= 0.4, `busiest bot share ${busiest}`);
});

test('generator - bots 1 is all bots', () => {
  const generator = fixed({ bots: 1 });
  for (let i = 0; i < 1_000; i++) assert.ok(isBotUser(generator.nextEvent().user));
});

test('generator - model constants out of range are refused with their name', () => {
  assert.throws(() => fixed({ vendors: 0 }), /vendors/);
  assert.throws(() => fixed({ addProbability: 1.5 }), /addProbability/);
  assert.throws(() => fixed({ userSigma: 0 }), /userSigma/);
  assert.throws(() => fixed({ reservoir: 1.5 }), /reservoir/);
  assert.throws(() => fixed({ bots: -0.1 }), /bots/);
});
