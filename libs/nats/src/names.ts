// Every NATS subject, stream, consumer and bucket name of Segment comes from here. A namespace
// isolates one pipeline from another on the same server (tests and benchmarks each take their own).

/** Namespaces are lower-case tokens: they become part of subjects (lower) and streams (upper). */
export const namespacePattern = /^[a-z][a-z0-9_]{0,31}$/;
export const defaultNamespace = 'segment';

/** The derived collections, each a stream of its own. */
export const derivedCollections = ['memberships', 'profiles', 'toggles'] as const;
export type DerivedCollection = (typeof derivedCollections)[number];

/** Vendors are integers >= 1 (the event schema); a partition is one vendor's subject. */
export function isVendorToken(token: string): boolean {
  return /^[1-9][0-9]{0,15}$/.test(token);
}

export interface Names {
  readonly namespace: string;
  readonly events: { stream: string; subjects: string; subject(vendor: number): string; vendorOf(subject: string): number | undefined };
  readonly derived: Record<DerivedCollection, { stream: string; subjects: string; subject(vendor: number): string }>;
  readonly deadLetters: { stream: string; subjects: string; subject(source: string): string };
  readonly buckets: { toggleRegisters: string; pushProfileRegisters: string; checkpoints: string };
  /** Registers changed since they were last written to their bucket, one subject per bucket and partition. */
  readonly registerJournal: { stream: string; subjects: string; subject(bucket: string, partition: string): string };
  /** One derive consumer per replica, over every vendor; one projector consumer per derived collection. */
  readonly consumers: { derive(replica: number): string; derivePrefix: string; project(collection: DerivedCollection): string };
}

export function namesFor(namespace: string = defaultNamespace): Names {
  if (!namespacePattern.test(namespace)) {
    throw new Error(`namespace "${namespace}" must match ${namespacePattern} (it becomes part of subjects and stream names)`);
  }
  const upper = namespace.toUpperCase();
  const eventsPrefix = `${namespace}.events.`;
  const derived = Object.fromEntries(
    derivedCollections.map((collection) => [
      collection,
      {
        stream: `${upper}_${collection.toUpperCase()}`,
        subjects: `${namespace}.${collection}.>`,
        subject: (vendor: number) => `${namespace}.${collection}.${vendor}`,
      },
    ]),
  ) as Names['derived'];
  return Object.freeze({
    namespace,
    events: {
      stream: `${upper}_EVENTS`,
      subjects: `${eventsPrefix}*`,
      subject: (vendor: number) => `${eventsPrefix}${vendor}`,
      vendorOf(subject: string) {
        if (!subject.startsWith(eventsPrefix)) return undefined;
        const token = subject.slice(eventsPrefix.length);
        return isVendorToken(token) ? Number(token) : undefined;
      },
    },
    derived,
    deadLetters: {
      stream: `${upper}_DLQ`,
      subjects: `${namespace}.dlq.>`,
      subject: (source: string) => `${namespace}.dlq.${source}`,
    },
    buckets: {
      toggleRegisters: `${upper}_TOGGLE_REGISTERS`,
      pushProfileRegisters: `${upper}_PUSH_PROFILE_REGISTERS`,
      checkpoints: `${upper}_CHECKPOINTS`,
    },
    registerJournal: {
      stream: `${upper}_REGISTER_JOURNAL`,
      subjects: `${namespace}.journal.>`,
      subject: (bucket: string, partition: string) => `${namespace}.journal.${bucket}.${partition}`,
    },
    consumers: {
      derive: (replica: number) => `derive_replica_${replica}`,
      derivePrefix: 'derive_replica_',
      project: (collection: DerivedCollection) => `project_${collection}`,
    },
  });
}

/** Headers Segment sets on its messages. */
export const headers = {
  /** JetStream's de-duplication id. */
  msgId: 'Nats-Msg-Id',
  /** Provenance of a derived message: the source stream, partition and inclusive sequence range it reflects. */
  sourceStream: 'Segment-Source-Stream',
  sourcePartition: 'Segment-Source-Partition',
  sourceRange: 'Segment-Source-Range',
  /** A derived message carries a batch of documents, as NDJSON; this counts them. */
  documentCount: 'Segment-Documents',
  /** Dead letters: why, and where from. */
  deadReason: 'Segment-Dead-Reason',
  deadSubject: 'Segment-Dead-Subject',
  deadSequence: 'Segment-Dead-Sequence',
  deadStream: 'Segment-Dead-Stream',
} as const;
