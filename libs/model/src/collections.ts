/** The collections of Segment and their keys (JSON pointers), as in DESIGN and the catalog format. */
export const collections = {
  'segment/events': { key: ['/event'], schema: 'event' },
  'segment/memberships': { key: ['/segment/vendor', '/segment/name', '/user'], schema: 'membership' },
  'segment/profiles': { key: ['/user'], schema: 'profile' },
  'segment/toggles': { key: ['/event'], schema: 'toggle' },
} as const;

export type CollectionName = keyof typeof collections;

export function isCollectionName(name: string): name is CollectionName {
  return Object.hasOwn(collections, name);
}

/** Profile segments are kept sorted and unique by this key. */
export const profileSegmentKey = ['/segment/name', '/segment/vendor'] as const;
