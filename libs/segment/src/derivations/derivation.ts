import { pointerGet, type CollectionName, type Event, type SchemaName } from '@segment/model';
import { reductionOf } from '@segment/reduce';

/** What `publish` sees of the register of the event's shuffle key: before and after the event's update. */
export interface RegisterView<R> {
  before: R;
  after: R;
}

/**
 * A derivation as data, for a runtime to execute (after estuary/flow): events are grouped by
 * `shuffleKey`; `update` returns register deltas, reduced into the key's register with the register
 * schema's annotations; `publish` maps the event and that register to output documents.
 */
export interface Derivation<R = unknown, O = unknown> {
  readonly name: string;
  readonly source: 'segment/events';
  readonly collection: CollectionName;
  readonly shuffleKey: readonly string[];
  readonly outputSchema: SchemaName;
  readonly register?: {
    readonly schema: SchemaName;
    readonly initial: R;
    update(event: Event): R[];
    /**
     * Whether a register must be stored. One that acts exactly like `initial` on every later event
     * need not be (toggles: a user never added), and each KV write costs the server ~25 µs.
     * Once true for a key it must stay true: a register not written leaves a stored one in place.
     * Default: always.
     */
    persist?(register: R): boolean;
  };
  publish(event: Event, register: RegisterView<R>): O[];
}

/** The values of an event's shuffle key, e.g. [vendor, name, user]. */
export function shuffleKeyValues(derivation: Pick<Derivation, 'shuffleKey'>, event: Event): (string | number)[] {
  return derivation.shuffleKey.map((pointer) => pointerGet(event, pointer) as string | number);
}

/** The values of an event's shuffle key, as one string: equal keys give equal strings, and only they. */
export function shuffleKeyOf(derivation: Pick<Derivation, 'shuffleKey'>, event: Event): string {
  return JSON.stringify(shuffleKeyValues(derivation, event));
}

/** Applies one event: the register after its update, and what it publishes. Pure; the runtime does the I/O. */
export function applyEvent<R, O>(derivation: Derivation<R, O>, event: Event, before: R): { after: R; outputs: O[] } {
  let after = before;
  if (derivation.register) {
    const reduceRegister = reductionOf(derivation.register.schema) as unknown as (left: R, right: R) => R;
    for (const delta of derivation.register.update(event)) after = reduceRegister(after, delta);
  }
  return { after, outputs: derivation.publish(event, { before, after }) };
}
