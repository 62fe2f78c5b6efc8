// Shared steps of the cross-process suites: generate events, publish them, read derived collections back.
import { collections, compareByKey, pointerGet, type CollectionName, type Event, type SchemaName } from '@segment/model';
import { reductionOf } from '@segment/reduce';
import { EventGenerator, tickClock } from '@segment/segment';
import { PipelinedPublisher, parseNdjson, type Names } from '@segment/nats';
import type { NatsConnection } from '@nats-io/transport-node';
import { readStream, type StoredMessage } from './streams.ts';

/** Deterministic events of the seed model, small enough that keys repeat and toggles happen. */
export function generateEvents(count: number, seed = 7, model: { segments?: number; users?: number } = {}): Event[] {
  const generator = new EventGenerator({ seed, segments: model.segments ?? 300, users: model.users ?? 3_000, clock: tickClock(Date.UTC(2021, 2, 19), 37), utcOffsetMinutes: () => -240 });
  return Array.from({ length: count }, () => generator.nextEvent());
}

export async function publishEvents(nc: NatsConnection, names: Names, events: readonly Event[]): Promise<void> {
  const publisher = new PipelinedPublisher(nc);
  await Promise.all(events.map((event) => publisher.publish(names.events.subject(event.segment.vendor), JSON.stringify(event), { msgId: event.event })));
  await publisher.close();
}

/** A derived collection as a reader sees it: every document of its stream reduced per key, in key order. */
export function reduceDerived(messages: readonly StoredMessage[], collection: CollectionName): unknown[] {
  const { key, schema } = collections[collection];
  const reduce = reductionOf(schema as SchemaName) as (left: unknown, right: unknown) => unknown;
  const byKey = new Map<string, unknown>();
  for (const message of messages) {
    for (const document of parseNdjson(message.data)) {
      const id = JSON.stringify(key.map((pointer) => pointerGet(document, pointer)));
      byKey.set(id, reduce(byKey.get(id), document));
    }
  }
  return [...byKey.values()].sort((a, b) => compareByKey(key, a, b));
}

export async function readDerived(nc: NatsConnection, names: Names) {
  const read = async (c: 'memberships' | 'profiles' | 'toggles') => readStream(nc, names.derived[c].stream);
  const [memberships, profiles, toggles] = await Promise.all([read('memberships'), read('profiles'), read('toggles')]);
  return {
    raw: { memberships, profiles, toggles },
    memberships: reduceDerived(memberships, 'segment/memberships'),
    profiles: reduceDerived(profiles, 'segment/profiles'),
    toggles: reduceDerived(toggles, 'segment/toggles'),
  };
}
