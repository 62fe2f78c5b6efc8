export * from './derivation.ts';
export { detailOf } from './detail.ts';
export { membershipsDerivation } from './memberships.derivation.ts';
export { profilesDerivation } from './profiles.derivation.ts';
export { togglesDerivation } from './toggles.derivation.ts';
export { pushProfilesDerivation } from './push-profiles.derivation.ts';
