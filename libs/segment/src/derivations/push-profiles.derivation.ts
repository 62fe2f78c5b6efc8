import type { Profile, PushProfileRegister } from '@segment/model';
import type { Derivation } from './derivation.ts';
import { detailOf } from './detail.ts';

/**
 * Optional "push" mode of profiles: a user-keyed register accumulates the whole segment set, and
 * every event publishes the user's complete, current profile (for consumers that want no deltas).
 */
export const pushProfilesDerivation: Derivation<PushProfileRegister, Profile> = {
  name: 'push-profiles',
  source: 'segment/events',
  collection: 'segment/profiles',
  shuffleKey: ['/user'],
  outputSchema: 'profile',
  register: {
    schema: 'pushProfileRegister',
    initial: { user: '', segments: [] },
    update: (event) => [{ user: event.user, segments: [detailOf(event)] }],
  },
  publish: (_event, { after }) => [after],
};
