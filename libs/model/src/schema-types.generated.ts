// Generated from schemas/*.schema.json by schemas/scripts/generate-types.ts. Do not edit.

/**
 * A user in a segment; key [/segment/vendor, /segment/name, /user].
 */

export type Membership = SegmentDetail & {
  user: string;
};

export interface Event {
  /**
   * Unique id of the event; also its de-duplication key.
   */
  event: string;
  /**
   * RFC 3339 time of the event.
   */
  timestamp: string;
  /**
   * Any well-formed Unicode text (no lone surrogates: Postgres and UTF-8 cannot store them).
   */
  user: string;
  segment: SegmentRef;
  /**
   * A value associated with the user in the segment (adds only).
   */
  value?: string;
  /**
   * Present only on removals.
   */
  remove?: true;
}

export interface SegmentRef {
  vendor: number;
  name: string;
}
/**
 * A user's status in one segment, reduced over its events.
 */

export interface SegmentDetail {
  segment: SegmentRef;
  /**
   * Earliest add.
   */
  first?: string;
  /**
   * Latest event.
   */
  last: string;
  /**
   * Whether the last event was an add.
   */
  member: boolean;
  /**
   * Last value given by an add.
   */
  value?: string;
}
/**
 * A user's segments; key [/user].
 */

export interface Profile {
  user: string;
  segments: SegmentDetail[];
}
/**
 * An event that changed a user's status in a segment, with the event it followed; key [/event].
 */

export interface Toggle {
  event: string;
  timestamp: string;
  user: string;
  segment: SegmentRef;
  value?: string;
  remove?: true;
  previous: Event;
}
/**
 * Per (vendor, segment name, user): the last event, without the user and segment that are the register's key, and whether the user was ever added.
 */

export interface ToggleRegister {
  last?: KeyedEvent;
  added?: boolean;
}
/**
 * An event kept under its (vendor, segment name, user) key, so without them: a third of the bytes of a toggle register in memory, in the journal and in KV.
 */

export interface KeyedEvent {
  /**
   * Unique id of the event; also its de-duplication key.
   */
  event: string;
  /**
   * RFC 3339 time of the event.
   */
  timestamp: string;
  /**
   * A value associated with the user in the segment (adds only).
   */
  value?: string;
  /**
   * Present only on removals.
   */
  remove?: true;
}
/**
 * Per user: the full, current profile.
 */

export interface PushProfileRegister {
  user: string;
  segments: SegmentDetail[];
}
