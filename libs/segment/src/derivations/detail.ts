import type { Event, SegmentDetail } from '@segment/model';

/** An event's detail: what it says of the user's status in its segment (DESIGN, "Semantics"). */
export function detailOf(event: Event): SegmentDetail {
  if (event.remove) return { segment: event.segment, last: event.timestamp, member: false };
  const detail: SegmentDetail = { segment: event.segment, first: event.timestamp, last: event.timestamp, member: true };
  if (event.value !== undefined) detail.value = event.value;
  return detail;
}
