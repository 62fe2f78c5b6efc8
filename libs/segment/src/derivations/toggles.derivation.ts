import type { Toggle, ToggleRegister } from '@segment/model';
import type { Derivation } from './derivation.ts';

/**
 * An event toggles when the user was added to the segment at least once before it and its
 * add/remove status differs from the previous event's. The register holds that previous event.
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
    update: (event) => [{ last: event, added: !event.remove }],
    // Until a first add, `publish` ignores the register: it is as good as the initial one.
    persist: (register) => register.added === true,
  },
  publish(event, { before }) {
    const previous = before.last;
    if (!before.added || !previous || Boolean(previous.remove) === Boolean(event.remove)) return [];
    return [{ ...event, previous }];
  },
};
