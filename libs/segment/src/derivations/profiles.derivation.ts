import type { Profile } from '@segment/model';
import type { Derivation } from './derivation.ts';
import { detailOf } from './detail.ts';

/** Stateless: one partial profile per event, holding just that event's segment. */
export const profilesDerivation: Derivation<undefined, Profile> = {
  name: 'profiles',
  source: 'segment/events',
  collection: 'segment/profiles',
  shuffleKey: ['/user'],
  outputSchema: 'profile',
  publish: (event) => [{ user: event.user, segments: [detailOf(event)] }],
};
