import type { Event, KeyedEvent, Toggle, ToggleRegister } from '@segment/model';
import type { Derivation } from './derivation.ts';

/**
 * An event toggles when the user was added to the segment at least once before it and its
 * add/remove status differs from the previous event's. The register holds that previous event,
 * without the user and segment: they are the register's key, and so the toggling event's own.
 */
export const togglesDerivation: Derivation<ToggleRegister, Toggle> = {
  name: 'toggles',
  source: 'segment/events',
  collection: 'segment/toggles',
  shuffleKey: ['/segment/vendor', '/segment/name', '/user'],
  outputSchema: 'toggle',
  register: {
    schema: 'toggleRegister',
    initial: {},
    update: (event) => [{ last: keyedEventOf(event), added: !event.remove }],
    // Until a first add, `publish` ignores the register: it is as good as the initial one.
    persist: (register) => register.added === true,
  },
  publish(event, { before }) {
    const last = before.last;
    if (!before.added || !last || Boolean(last.remove) === Boolean(event.remove)) return [];
    return [{ ...event, previous: { ...last, user: event.user, segment: event.segment } }];
  },
};

function keyedEventOf({ user: _user, segment: _segment, ...keyed }: Event): KeyedEvent {
  return keyed;
}
