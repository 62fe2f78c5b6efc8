import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@segment/telemetry';
import { BloomFilter, defaultRegisterMemory, keyId, type RegisterStore } from '@segment/runtime';
import { encodeKey, encodeKeyToken } from '../kv-keys.ts';
import type { PipelinedPublisher } from '../publisher.ts';
import { kvStreamPrefix } from '../provision.ts';
import { readStreamPages } from '../read-stream.ts';

/** Registers larger than this are written with an ack each; the fence below never has to vouch for a size rejection. */
const unackedMaxBytes = 64 * 1024;
const decoder = new TextDecoder();
/** A key of the bucket no register has (registers' keys start with a partition token). */
const fenceKey = '_fence';
/** A journal message stays below the 1 MiB message limit, with room for the protocol. */
const journalMessageBytes = 1_000_000;
/** Journal messages read at a time when a partition's journal is replayed. */
const replayPageSize = 64;
/**
 * Registers sent to the bucket at a time while a journal is moved; the next slice waits for the
 * server to have stored this one (an acked fence). The server reads a connection's messages in
 * order, so while moves shared the worker's connection, whatever a move had sent and the server not
 * yet stored delayed every transaction's messages: 60,000 at once gave a p99 of 409 ms at 5,000
 * events/s, and in a bucket of millions of keys (nats-server 2.9 took ~56 µs to rewrite one) a
 * slice per turn of the event loop was still sent faster than the server stored them. On a
 * connection of their own (`moves`), the pacing still hands the server a move a slice at a time.
 */
const moveSliceSize = 1_000;

export interface KvRegisterStoreOptions {
  nc: NatsConnection;
  bucket: string;
  publisher: PipelinedPublisher;
  /**
   * The connection (and its publisher) that journal moves write the bucket over; default `nc`. The
   * server reads a connection's messages in order, and in a bucket of millions of keys a slice of
   * rewrites has held a connection's reading for seconds: on a connection of their own, the
   * worker's derived documents and commits do not wait behind them.
   */
  moves?: { nc: NatsConnection; publisher: PipelinedPublisher };
  /** The publisher whose connection reads registers from the bucket (default `publisher`), for the same reason as `moves`. */
  reads?: PipelinedPublisher;
  logger: Logger;
  /** The journal stream, and the subject of one partition's journal of this bucket. */
  journal: { stream: string; subject(partition: string): string };
  /**
   * Journal bytes of all partitions together after which the largest journal's registers are
   * written to the bucket and that journal emptied. Bounds the memory the journaled registers take
   * and the replay at a restart, whatever number of partitions the worker owns. Default
   * `defaultRegisterMemory.journalBytes` (96 MiB, ~360,000 toggle registers).
   */
  journalBytes?: number;
}

/** What a register store did since it was opened (logged when the worker stops). */
export interface RegisterStoreStats {
  /** Registers appended to journals. */
  journaled: number;
  /** Journals moved to the bucket, and the registers they wrote there. */
  moves: number;
  moved: number;
  /** Registers read from the bucket (cache misses the Bloom filter could not rule out), and of those, found. */
  bucketReads: number;
  bucketFound: number;
}

/** A partition's journal and the filter of the keys its bucket holds, once both are read. */
interface ReadyPartition {
  readonly journal: PartitionJournal;
  readonly known: BloomFilter;
}

/** One partition's journal: the registers changed since they were last written to the bucket. */
interface PartitionJournal {
  readonly partition: string;
  /** By encoded KV key, the register as the bucket would store it (`{seq, value}` JSON). */
  readonly bodies: Map<string, string>;
  /** Bytes journaled since the journal was last emptied (what a replay reads). */
  bytes: number;
  /** Stream sequence of the newest journal message: a move purges through the newest it covers. */
  lastSeq: number;
  /** The move to the bucket under way, if any, and the bytes it empties the journal of once done. */
  moving: Promise<void> | undefined;
  movingBytes: number;
}

/**
 * Registers of one derivation: a journal stream in front of a KV bucket.
 *
 * A commit appends its changed registers to the partition's journal, a few large messages
 * (newline-separated `<key> <register JSON>`), instead of one KV write per register: a KV write
 * cost the server ~13 µs and the worker ~8 µs per event in the 1M-event bench, ~23% of the
 * throughput. The registers of the journals are kept (as their JSON) until all the journals
 * together pass `journalBytes`; then, in the background and a slice at a time, the largest
 * journal's registers are written to the bucket and the journal messages they came from are
 * purged, so a register changed many times meanwhile is written once. Commits go on meanwhile,
 * into newer journal messages that the purge leaves. A restart replays what the journal holds
 * before reading the partition: a crash before the purge replays registers the bucket also has,
 * never older ones than it has.
 *
 * The bucket: most keys a partition meets are new, and a get of a missing key costs a round trip
 * (it capped derivations at ~12K events/s), so the first read of a partition lists the keys it has
 * (headers only, streamed) into a Bloom filter, and later reads fetch only keys that may exist:
 * fixed memory whatever the keyspace. Keys group into partitions by their first component (the
 * vendor), whose only writer is this process. Bucket writes go without an ack each, with an acked
 * write to the same bucket (a fence) after every slice and at the end: the server stores one
 * connection's messages to one stream in order, so a fence's ack says every register before it was
 * stored. Messages in flight when a connection drops are lost while the fence, sent after the
 * reconnect, would still be acked; so a write during which the connection dropped is made again,
 * acked one by one. A replicated bucket acks every write: there the order holds only within one
 * leader's term, and a write that reaches a server no longer (or not yet) the stream's leader is
 * dropped with no reply to say so, while the fence behind it, stored by the next leader, is acked.
 */
export class KvRegisterStore implements RegisterStore {
  readonly #nc: NatsConnection;
  readonly #bucket: string;
  /** `$KV.<bucket>.`: a key's subject is this and the encoded key. */
  readonly #keySubject: string;
  /** The direct-get subject prefix of the bucket's keys: the last message of a key's subject. */
  readonly #directGet: string;
  /** The stream's message-get API, which only its leader answers. */
  readonly #leaderGet: string;
  #isReplicated: Promise<boolean> | undefined;
  readonly #publisher: PipelinedPublisher;
  readonly #moves: { nc: NatsConnection; publisher: PipelinedPublisher };
  readonly #reads: PipelinedPublisher;
  readonly #logger: Logger;
  readonly #journal: KvRegisterStoreOptions['journal'];
  readonly #journalBytes: number;
  readonly #journals = new Map<string, Promise<PartitionJournal>>();
  /** The journals replayed so far. */
  readonly #replayed: PartitionJournal[] = [];
  /** Per partition (first key component, encoded): the keys stored in the bucket, and maybe a few more. */
  readonly #known = new Map<string, Promise<BloomFilter>>();
  /** The partitions whose journal is replayed and whose keys are listed, by encoded first key component. */
  readonly #ready = new Map<string, ReadyPartition>();
  #jsm: Promise<JetStreamManager> | undefined;
  /** Counts interruptions of the moves' connection: a bucket write that saw one cannot trust its fence. */
  #interruptions = 0;
  readonly stats: RegisterStoreStats = { journaled: 0, moves: 0, moved: 0, bucketReads: 0, bucketFound: 0 };

  constructor(options: KvRegisterStoreOptions) {
    this.#nc = options.nc;
    this.#bucket = options.bucket;
    this.#keySubject = `$KV.${options.bucket}.`;
    this.#directGet = `$JS.API.DIRECT.GET.${kvStreamPrefix}${options.bucket}.${this.#keySubject}`;
    this.#leaderGet = `$JS.API.STREAM.MSG.GET.${kvStreamPrefix}${options.bucket}`;
    this.#publisher = options.publisher;
    const moves = options.moves ?? { nc: options.nc, publisher: options.publisher };
    this.#moves = moves;
    this.#reads = options.reads ?? options.publisher;
    this.#logger = options.logger;
    this.#journal = options.journal;
    this.#journalBytes = options.journalBytes ?? defaultRegisterMemory.journalBytes;
    void (async () => {
      for await (const status of moves.nc.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnect' || status.type === 'staleConnection' || status.type === 'forceReconnect') this.#interruptions++;
      }
    })();
  }

  load(keys: readonly (readonly (string | number)[])[]): Map<string, string> | Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const stored: string[] = [];
    const ids: string[] = [];
    let first: string | number | undefined;
    let partition: ReadyPartition | undefined;
    for (const key of keys) {
      // A transaction's keys share one partition: look its journal and filter up once.
      if (key[0] !== first) {
        first = key[0]!;
        const token = encodeKeyToken(first);
        partition = this.#ready.get(token);
        // The partition's first read: its journal is replayed and its keys listed first.
        if (!partition) return this.#readyPartition(token).then(() => this.load(keys));
      }
      const encoded = encodeKey(key);
      const journaled = partition!.journal.bodies.get(encoded);
      if (journaled !== undefined) out.set(keyId(key), journaled);
      else if (partition!.known.has(encoded)) {
        stored.push(encoded);
        ids.push(keyId(key));
      }
    }
    // Every register read from memory (or known not to exist): no wait.
    if (stored.length === 0) return out;
    this.stats.bucketReads += stored.length;
    return Promise.all(stored.map((encoded) => this.#readRegister(encoded))).then((registers) => {
      registers.forEach((register, i) => {
        if (register === undefined) return;
        out.set(ids[i]!, register);
        this.stats.bucketFound++;
      });
      return out;
    });
  }

  async save(entries: readonly { key: readonly (string | number)[]; json: string }[]): Promise<void> {
    const byPartition = new Map<string, { encoded: string; body: string }[]>();
    for (const { key, json } of entries) {
      const partition = encodeKeyToken(key[0]!);
      let writes = byPartition.get(partition);
      if (!writes) byPartition.set(partition, (writes = []));
      writes.push({ encoded: encodeKey(key), body: json });
    }
    await Promise.all([...byPartition].map(([partition, writes]) => this.#append(partition, writes)));
  }

  /** Journals a commit's registers of one partition; once the journal is large, moves them to the bucket. */
  async #append(partition: string, writes: readonly { encoded: string; body: string }[]): Promise<void> {
    const journal = await this.#journalOf(partition);
    const messages: string[] = [];
    let message = '';
    let messageBytes = 0;
    let bytes = 0;
    for (const { encoded, body } of writes) {
      const line = `${encoded} ${body}\n`;
      const lineBytes = Buffer.byteLength(line);
      if (lineBytes > journalMessageBytes) throw new Error(`register ${encoded} of bucket ${this.#bucket} takes ${lineBytes} bytes, over the ${journalMessageBytes}-byte message limit`);
      if (messageBytes + lineBytes > journalMessageBytes) {
        messages.push(message);
        message = '';
        messageBytes = 0;
      }
      message += line;
      messageBytes += lineBytes;
      bytes += lineBytes;
    }
    if (message.length > 0) messages.push(message);
    const subject = this.#journal.subject(partition);
    const acks = await Promise.all(messages.map((body) => this.#publisher.publish(subject, body)));
    for (const { seq } of acks) journal.lastSeq = Math.max(journal.lastSeq, seq);
    for (const { encoded, body } of writes) journal.bodies.set(encoded, body);
    journal.bytes += bytes;
    this.stats.journaled += writes.length;
    this.#moveOverBudget();
  }

  /**
   * While the journals not being moved hold more than the budget, moves the largest: it frees the
   * most memory, and a register changed many times in it meanwhile is written to the bucket once.
   */
  #moveOverBudget(): void {
    for (;;) {
      let notMoving = 0;
      let largest: PartitionJournal | undefined;
      for (const journal of this.#replayed) {
        notMoving += journal.bytes - journal.movingBytes;
        if (!journal.moving && journal.bytes > (largest?.bytes ?? 0)) largest = journal;
      }
      if (notMoving <= this.#journalBytes || !largest) return;
      const journal = largest;
      journal.movingBytes = journal.bytes;
      journal.moving = this.#move(journal)
        .catch((error: unknown) => this.#logger.warn({ err: error, bucket: this.#bucket, partition: journal.partition }, 'moving a register journal to its bucket failed; the next commit tries again'))
        .finally(() => {
          journal.movingBytes = 0;
          journal.moving = undefined;
        });
    }
  }

  /** Resolves once no journal is being moved (before the connection closes). */
  async settle(): Promise<void> {
    for (const journal of this.#journals.values()) await (await journal.catch(() => undefined))?.moving;
  }

  /** Writes the registers a partition's journal holds now to the bucket, then purges the messages they came from. */
  async #move(journal: PartitionJournal): Promise<void> {
    const { partition } = journal;
    const moved = [...journal.bodies];
    const through = journal.lastSeq;
    const bytes = journal.movingBytes;
    const interruptions = this.#interruptions;
    const { nc, publisher } = this.#moves;
    const fenced = !(await this.#replicated());
    const acked: Promise<unknown>[] = [];
    try {
      // Where the last slice's acks begin: the slices before it were awaited already.
      let sliceAcked = 0;
      for (let i = 0; i < moved.length; i += moveSliceSize) {
        if (i > 0) await (fenced ? publisher.publish(this.#keySubject + fenceKey, '') : Promise.all(acked.slice(sliceAcked)));
        sliceAcked = acked.length;
        for (const [encoded, body] of moved.slice(i, i + moveSliceSize)) {
          const subject = this.#keySubject + encoded;
          if (!fenced || body.length > unackedMaxBytes) acked.push(publisher.publish(subject, body));
          // A Buffer from Node's shared pool: nats.js would encode a string into an ArrayBuffer of its own.
          else nc.publish(subject, Buffer.from(body));
        }
      }
      if (fenced) acked.push(publisher.publish(this.#keySubject + fenceKey, ''));
      await Promise.all(acked);
      if (fenced && this.#interruptions !== interruptions) {
        acked.push(...moved.map(([encoded, body]) => publisher.publish(this.#keySubject + encoded, body)));
        await Promise.all(acked);
      }
    } catch (error) {
      // Writes of this move still queued in the publisher would land after the next move's direct
      // writes and put older registers over newer ones: the next move starts only once they settled.
      await Promise.allSettled(acked);
      throw error;
    }
    const known = await this.#knownKeys(partition);
    for (const [encoded] of moved) known.add(encoded);
    await (await this.#manager()).streams.purge(this.#journal.stream, { filter: this.#journal.subject(partition), seq: through + 1 });
    // A register journaled again meanwhile is in a newer message: it stays.
    for (const [encoded, body] of moved) if (journal.bodies.get(encoded) === body) journal.bodies.delete(encoded);
    journal.bytes -= bytes;
    this.stats.moves++;
    this.stats.moved += moved.length;
  }

  /** A register as the bucket holds it now; undefined when it has none. */
  async #readRegister(encoded: string): Promise<string | undefined> {
    if (await this.#replicated()) return this.#readRegisterFromLeader(encoded);
    // Direct gets through the publisher's window and inbox: `kv.get` made a timer and two errors
    // (stack traces) per call, ~40 µs of the worker's CPU a read at 10M events.
    const reply = await this.#reads.request(this.#directGet + encoded);
    const status = reply.headers?.code ?? 0;
    if (status === 404) return undefined;
    if (status !== 0 && status !== 200) throw new Error(`reading register ${encoded} from bucket ${this.#bucket} failed: ${status} ${reply.headers?.description ?? ''}`);
    // A deleted or purged key reads back as its marker: no register.
    if (reply.headers?.get('KV-Operation') || reply.data.length === 0) return undefined;
    return decoder.decode(reply.data);
  }

  /**
   * Every replica of a bucket answers direct gets, and one that lags (in nats-server before 2.9.17
   * even right after its restart) answers with an older register, which would then be taken for
   * the key's state: a replicated bucket's registers are read from its stream's leader.
   */
  #replicated(): Promise<boolean> {
    return (this.#isReplicated ??= this.#manager()
      .then((jsm) => jsm.streams.info(kvStreamPrefix + this.#bucket))
      .then((info) => info.config.num_replicas > 1)
      .catch((error: unknown) => {
        this.#isReplicated = undefined;
        throw error;
      }));
  }

  /** Through the publisher, like the direct gets: `jsm.streams.getMessage` goes through `nc.request`, a timer per call, like the `kv.get` measured above. */
  async #readRegisterFromLeader(encoded: string): Promise<string | undefined> {
    const reply = await this.#reads.request(this.#leaderGet, JSON.stringify({ last_by_subj: this.#keySubject + encoded }));
    const answer = JSON.parse(decoder.decode(reply.data)) as { message?: { data?: string }; error?: { code: number; description?: string } };
    if (answer.error?.code === 404) return undefined;
    if (answer.error) throw new Error(`reading register ${encoded} from bucket ${this.#bucket} failed: ${answer.error.code} ${answer.error.description ?? ''}`);
    // A deleted or purged key's marker has no data: no register.
    return answer.message?.data ? Buffer.from(answer.message.data, 'base64').toString('utf8') : undefined;
  }

  async #readyPartition(partition: string): Promise<void> {
    const [journal, known] = await Promise.all([this.#journalOf(partition), this.#knownKeys(partition)]);
    this.#ready.set(partition, { journal, known });
  }

  /** A partition's journal, replayed from the stream the first time the partition is touched. */
  #journalOf(partition: string): Promise<PartitionJournal> {
    let journal = this.#journals.get(partition);
    if (!journal) {
      journal = this.#replay(partition);
      this.#journals.set(partition, journal);
      journal.catch(() => this.#journals.delete(partition));
    }
    return journal;
  }

  async #replay(partition: string): Promise<PartitionJournal> {
    const journal: PartitionJournal = { partition, bodies: new Map(), bytes: 0, lastSeq: 0, moving: undefined, movingBytes: 0 };
    for await (const page of readStreamPages(this.#nc, this.#journal.stream, { pageSize: replayPageSize, subject: this.#journal.subject(partition) })) {
      for (const message of page) {
        const text = decoder.decode(message.data);
        for (let start = 0; start < text.length; ) {
          const space = text.indexOf(' ', start);
          const end = text.indexOf('\n', space);
          journal.bodies.set(text.slice(start, space), text.slice(space + 1, end));
          start = end + 1;
        }
        journal.bytes += message.data.length;
        journal.lastSeq = message.seq;
      }
    }
    this.#replayed.push(journal);
    return journal;
  }

  #knownKeys(partition: string): Promise<BloomFilter> {
    let known = this.#known.get(partition);
    if (!known) {
      known = (async () => {
        const filter = new BloomFilter();
        const keys = { pageSize: 1_000, subject: `${this.#keySubject}${partition}.>`, lastPerSubject: true };
        for await (const page of readStreamPages(this.#nc, kvStreamPrefix + this.#bucket, keys)) {
          for (const message of page) {
            // A deleted or purged key's last message is its marker: no register.
            const operation = message.headers?.get('KV-Operation');
            if (operation !== 'DEL' && operation !== 'PURGE') filter.add(message.subject.slice(this.#keySubject.length));
          }
        }
        return filter;
      })();
      this.#known.set(partition, known);
      known.catch(() => this.#known.delete(partition));
    }
    return known;
  }

  #manager(): Promise<JetStreamManager> {
    return (this.#jsm ??= jetstreamManager(this.#nc));
  }
}
