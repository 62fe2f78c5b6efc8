// The reference model: DESIGN.md "Semantics (the contract)" written out plainly, in memory.
// It uses no reduce library on purpose, so the schema-driven pipeline is checked against an
// independent oracle rather than against itself. Simple over fast: every read sorts afresh.
import {
  collections,
  compareByKey,
  compareInstants,
  profileSegmentKey,
  type Event,
  type Membership,
  type Profile,
  type SegmentDetail,
  type Toggle,
} from '@segment/model';

/** Every collection's fully reduced documents, each ordered by its collection key. */
export interface ReplayResult {
  events: Event[];
  memberships: Membership[];
  profiles: Profile[];
  toggles: Toggle[];
}

/** The toggle register of one (vendor, name, user). */
interface ToggleState {
  last: Event;
  added: boolean;
}

/** Ingests events incrementally; reads return copies, sorted by collection key. */
export class ReferenceModel {
  readonly #seen = new Set<string>();
  readonly #events: Event[] = [];
  readonly #memberships = new Map<string, Membership>();
  /** user → (segment name, vendor) → detail. */
  readonly #profiles = new Map<string, Map<string, SegmentDetail>>();
  readonly #registers = new Map<string, ToggleState>();
  readonly #toggles: Toggle[] = [];

  ingest(events: Iterable<Event>): void {
    // Copied so a caller mutating its documents later cannot rewrite history.
    for (const event of events) this.#ingestOne(structuredClone(event));
  }

  #ingestOne(event: Event): void {
    // JetStream drops a message whose Nats-Msg-Id (the event id) it has already stored.
    if (this.#seen.has(event.event)) return;
    this.#seen.add(event.event);
    this.#events.push(event);

    const detail = detailOf(event);
    const { vendor, name } = event.segment;
    const key = JSON.stringify([vendor, name, event.user]);

    const membership = this.#memberships.get(key);
    this.#memberships.set(key, toMembership(event.user, membership ? reduceDetail(membership, detail) : detail));

    let segments = this.#profiles.get(event.user);
    if (!segments) this.#profiles.set(event.user, (segments = new Map()));
    const segmentKey = JSON.stringify([name, vendor]);
    const current = segments.get(segmentKey);
    segments.set(segmentKey, current ? reduceDetail(current, detail) : detail);

    const register = this.#registers.get(key);
    if (register && register.added && isRemove(event) !== isRemove(register.last)) {
      this.#toggles.push({ ...event, previous: register.last });
    }
    this.#registers.set(key, { last: event, added: (register?.added ?? false) || !isRemove(event) });
  }

  get events(): Event[] {
    return sortByKey(collections['segment/events'].key, this.#events);
  }

  get memberships(): Membership[] {
    return sortByKey(collections['segment/memberships'].key, [...this.#memberships.values()]);
  }

  get profiles(): Profile[] {
    const profiles = [...this.#profiles].map(([user, segments]): Profile => ({
      user,
      segments: sortByKey(profileSegmentKey, [...segments.values()]),
    }));
    return sortByKey(collections['segment/profiles'].key, profiles);
  }

  get toggles(): Toggle[] {
    return sortByKey(collections['segment/toggles'].key, this.#toggles);
  }

  snapshot(): ReplayResult {
    return { events: this.events, memberships: this.memberships, profiles: this.profiles, toggles: this.toggles };
  }
}

/** Replays events from nothing and returns every collection. */
export function replay(events: Iterable<Event>): ReplayResult {
  const model = new ReferenceModel();
  model.ingest(events);
  return model.snapshot();
}

function isRemove(event: Event): boolean {
  return event.remove === true;
}

/** The detail of one event: `first` and `value` come from adds only. */
function detailOf(event: Event): SegmentDetail {
  const member = !isRemove(event);
  return {
    segment: event.segment,
    ...(member ? { first: event.timestamp } : {}),
    last: event.timestamp,
    member,
    ...(member && event.value !== undefined ? { value: event.value } : {}),
  };
}

/** Folds a later detail into an earlier one, as the contract reduces them in stream order. */
function reduceDetail(earlier: SegmentDetail, later: SegmentDetail): SegmentDetail {
  const first = earliest(earlier.first, later.first);
  const value = later.value ?? earlier.value;
  return {
    segment: earlier.segment,
    ...(first !== undefined ? { first } : {}),
    last: latest(earlier.last, later.last),
    member: later.member,
    ...(value !== undefined ? { value } : {}),
  };
}

/** The earlier instant; on equal instants the earlier-written string stays. */
function earliest(written: string | undefined, next: string | undefined): string | undefined {
  if (written === undefined) return next;
  if (next === undefined) return written;
  return compareInstants(next, written) < 0 ? next : written;
}

/** The later instant; on equal instants the earlier-written string stays. */
function latest(written: string, next: string): string {
  return compareInstants(next, written) > 0 ? next : written;
}

function toMembership(user: string, detail: SegmentDetail): Membership {
  const { segment, ...rest } = detail;
  return { segment, user, ...rest };
}

function sortByKey<T>(key: readonly string[], documents: readonly T[]): T[] {
  return structuredClone([...documents]).sort((a, b) => compareByKey(key, a, b));
}
