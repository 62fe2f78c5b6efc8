import type { Membership } from '@segment/model';
import type { Derivation } from './derivation.ts';
import { detailOf } from './detail.ts';

/** Stateless: one partial membership per event; reduction does the rest. */
export const membershipsDerivation: Derivation<undefined, Membership> = {
  name: 'memberships',
  source: 'segment/events',
  collection: 'segment/memberships',
  shuffleKey: ['/segment/vendor', '/segment/name', '/user'],
  outputSchema: 'membership',
  publish: (event) => [{ ...detailOf(event), user: event.user }],
};
