// The event model of Estuary Flow's examples/segment/generate.go, plus optional bot traffic.
import type { Event } from '@segment/model';
import { formatTimestamp, localUtcOffsetMinutes } from './format-timestamp.ts';
import { Prng } from './prng.ts';
import { ZipfDistribution } from './zipf.ts';

/** The constants of the model; `exampleModel` holds the example's values. */
export interface GeneratorModel {
  /** Seeds the PRNG: the same seed and clock give the same events. */
  readonly seed: number;
  /** Segments are numbered 0..segments (inclusive, as Go's `rand.NewZipf` imax). */
  readonly segments: number;
  /** Zipf skew of segments: P(k) ∝ (1 + k)^-skew. */
  readonly skew: number;
  /** A segment's vendor is 1 + segment mod vendors. */
  readonly vendors: number;
  /** Users are numbered 0..users. */
  readonly users: number;
  /** user = floor(users · min(1, |N(0,1)| / userSigma)): larger values crowd users near 0. */
  readonly userSigma: number;
  readonly addProbability: number;
  /** Chance an event repeats a sample from the reservoir (a browser reload, say). */
  readonly repeatProbability: number;
  /** Capacity of the reservoir of samples to repeat; once full, a random entry is replaced. */
  readonly reservoir: number;
  /** Fraction of events that come from bots; 0 leaves the example's model (and draws) untouched. */
  readonly bots: number;
  /** Bots are numbered 0..botUsers-1 and named `bot-%04x`. */
  readonly botUsers: number;
  /** Mean length of a bot's burst of consecutive events. */
  readonly botBurst: number;
}

export const exampleModel: GeneratorModel = Object.freeze({
  seed: 8675309,
  segments: 10_000,
  skew: 1.1,
  vendors: 10,
  users: 1_000_000,
  userSigma: 10,
  addProbability: 0.7,
  repeatProbability: 0.4,
  reservoir: 20_000,
  bots: 0,
  botUsers: 100,
  botBurst: 50,
});

export interface GeneratorOptions extends Partial<GeneratorModel> {
  /** Epoch milliseconds of the next event; called exactly once per event. */
  readonly clock: () => number;
  /** UTC offset (minutes east) to print a timestamp with; the host's local zone by default. */
  readonly utcOffsetMinutes?: (epochMs: number) => number;
}

/** Bots pick among each other with P(b) ∝ (1 + b)^-2, so a handful of bots dominate. */
const botSkew = 2;
/** A burst cycles over 1..3 segments drawn like everyone's, adding and removing at random. */
const maxBotSegmentsPerBurst = 3;
const botAddProbability = 0.5;
// Caps that keep the precomputed tables (8 bytes a segment, 9 a reservoir entry) within ~100 MB.
const maxSegments = 10_000_000;
const maxReservoir = 10_000_000;

const hexByte = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Yields the example's events one by one, as objects or as JSON lines. */
export class EventGenerator {
  readonly model: GeneratorModel;
  private readonly prng: Prng;
  private readonly clock: () => number;
  private readonly utcOffsetMinutes: (epochMs: number) => number;
  private readonly segmentZipf: ZipfDistribution;
  private readonly botZipf: ZipfDistribution | undefined;
  // Bot bursts start with this chance per event outside a burst, so bots make up `bots` of all events.
  private readonly burstStartProbability: number;

  private readonly reservoirSegment: Int32Array;
  private readonly reservoirUser: Int32Array;
  private readonly reservoirAdd: Uint8Array;
  private reservoirLength = 0;

  private burstRemaining = 0;
  private burstBot = 0;
  private readonly burstSegments = new Int32Array(maxBotSegmentsPerBurst);
  private burstSegmentCount = 0;

  // Cached per segment and per second: most events share both with an earlier one.
  private readonly segmentJson: (string | undefined)[] = [];
  private readonly segmentName: (string | undefined)[] = [];
  private timestampSecond = Number.NaN;
  private timestamp = '';

  // The event being emitted.
  private segment = 0;
  private user = '';
  private remove = false;
  private eventId = '';

  constructor(options: GeneratorOptions) {
    const { clock, utcOffsetMinutes, ...overrides } = options;
    const model: GeneratorModel = Object.freeze({ ...exampleModel, ...withoutUndefined(overrides) });
    validateModel(model);
    this.model = model;
    this.clock = clock;
    this.utcOffsetMinutes = utcOffsetMinutes ?? localUtcOffsetMinutes;
    this.prng = new Prng(model.seed);
    this.segmentZipf = new ZipfDistribution(model.skew, model.segments);
    this.reservoirSegment = new Int32Array(model.reservoir);
    this.reservoirUser = new Int32Array(model.reservoir);
    this.reservoirAdd = new Uint8Array(model.reservoir);
    if (model.bots > 0) {
      this.botZipf = new ZipfDistribution(botSkew, model.botUsers - 1);
      // Outside bursts, each event starts one (mean length L) with chance q, else is a person's;
      // bots' share is qL / (qL + 1 - q), which equals `bots` for this q.
      const f = model.bots;
      this.burstStartProbability = f / (f + model.botBurst * (1 - f));
    } else {
      this.botZipf = undefined;
      this.burstStartProbability = 0;
    }
  }

  /** The next event as a document of the event schema. */
  nextEvent(): Event {
    this.advance();
    const name = this.nameOf(this.segment);
    const event: Event = {
      event: this.eventId,
      timestamp: this.timestamp,
      user: this.user,
      segment: { vendor: 1 + (this.segment % this.model.vendors), name },
    };
    if (this.remove) event.remove = true;
    return event;
  }

  /** The next event as one line of JSON, keys in the example's order, ending in `\n`. */
  nextLine(): string {
    this.advance();
    return this.line();
  }

  /** The next `count` events as consecutive JSON lines; one string makes one large write. */
  nextLines(count: number): string {
    let text = '';
    for (let i = 0; i < count; i++) {
      this.advance();
      text += this.line();
    }
    return text;
  }

  private line(): string {
    const segment = this.segmentJson[this.segment] ?? this.cacheSegmentJson(this.segment);
    const tail = this.remove ? ',"remove":true}\n' : '}\n';
    return `{"event":"${this.eventId}","timestamp":"${this.timestamp}","user":"${this.user}","segment":${segment}${tail}`;
  }

  private advance(): void {
    if (this.burstRemaining === 0 && this.burstStartProbability > 0 && this.prng.nextDouble() < this.burstStartProbability) {
      this.startBurst();
    }
    if (this.burstRemaining > 0) {
      this.burstRemaining--;
      this.nextBotSample();
    } else {
      this.nextPersonSample();
    }
    this.eventId = this.nextUuid();
    this.stamp(this.clock());
  }

  /** generate.go's loop body: a novel or repeated sample, which then enters the reservoir. */
  private nextPersonSample(): void {
    const { model, prng } = this;
    let segment: number;
    let user: number;
    let add: boolean;
    // Go's `Float32() > RepeatProbability`; `>=` makes probability 0 mean never, exactly.
    if (this.reservoirLength === 0 || prng.nextFloat() >= model.repeatProbability) {
      segment = this.segmentZipf.sample(prng);
      user = Math.floor(model.users * Math.min(1, Math.abs(prng.nextNormal()) / model.userSigma));
      add = prng.nextFloat() < model.addProbability;
    } else {
      const i = prng.nextInt(this.reservoirLength);
      segment = this.reservoirSegment[i]!;
      user = this.reservoirUser[i]!;
      add = this.reservoirAdd[i] === 1;
    }
    if (model.reservoir > 0) {
      const i = this.reservoirLength === model.reservoir ? prng.nextInt(this.reservoirLength) : this.reservoirLength++;
      this.reservoirSegment[i] = segment;
      this.reservoirUser[i] = user;
      this.reservoirAdd[i] = add ? 1 : 0;
    }
    this.segment = segment;
    this.user = `usr-${user.toString(16).padStart(6, '0')}`;
    this.remove = !add;
  }

  private startBurst(): void {
    const { prng, model } = this;
    this.burstBot = this.botZipf!.sample(prng);
    // Geometric on 1, 2, ... with mean botBurst.
    const p = 1 / model.botBurst;
    this.burstRemaining = p >= 1 ? 1 : 1 + Math.floor(Math.log(1 - prng.nextDouble()) / Math.log(1 - p));
    this.burstSegmentCount = 1 + prng.nextInt(maxBotSegmentsPerBurst);
    for (let i = 0; i < this.burstSegmentCount; i++) this.burstSegments[i] = this.segmentZipf.sample(this.prng);
  }

  private nextBotSample(): void {
    const { prng } = this;
    this.segment = this.burstSegments[prng.nextInt(this.burstSegmentCount)]!;
    this.user = botUserName(this.burstBot);
    this.remove = prng.nextFloat() >= botAddProbability;
  }

  /** 16 random bytes as lowercase 8-4-4-4-12 hex, like the example's encodeHexUUID. */
  private nextUuid(): string {
    const { prng } = this;
    const w0 = prng.nextUint32();
    const w1 = prng.nextUint32();
    const w2 = prng.nextUint32();
    const w3 = prng.nextUint32();
    return (
      hex16(w0 >>> 16) + hex16(w0 & 0xffff) + '-' + hex16(w1 >>> 16) + '-' + hex16(w1 & 0xffff) + '-' +
      hex16(w2 >>> 16) + '-' + hex16(w2 & 0xffff) + hex16(w3 >>> 16) + hex16(w3 & 0xffff)
    );
  }

  private stamp(epochMs: number): void {
    const second = Math.floor(epochMs / 1000);
    if (second !== this.timestampSecond) {
      this.timestampSecond = second;
      this.timestamp = formatTimestamp(epochMs, this.utcOffsetMinutes(epochMs));
    }
  }

  private nameOf(segment: number): string {
    return (this.segmentName[segment] ??= `seg-${segment.toString(16).toUpperCase()}`);
  }

  private cacheSegmentJson(segment: number): string {
    const json = `{"vendor":${1 + (segment % this.model.vendors)},"name":"${this.nameOf(segment)}"}`;
    this.segmentJson[segment] = json;
    return json;
  }
}

const botPrefix = 'bot-';

export function botUserName(bot: number): string {
  return `${botPrefix}${bot.toString(16).padStart(4, '0')}`;
}

export function isBotUser(user: string): boolean {
  return user.startsWith(botPrefix);
}

function hex16(n: number): string {
  return hexByte[n >>> 8]! + hexByte[n & 0xff]!;
}

function withoutUndefined<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function validateModel(model: GeneratorModel): void {
  const integer = (name: keyof GeneratorModel, min: number, max: number) => {
    const value = model[name];
    if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  };
  const real = (name: keyof GeneratorModel, min: number, max: number, minExclusive = false) => {
    const value = model[name];
    if (!Number.isFinite(value) || value < min || value > max || (minExclusive && value === min)) {
      throw new RangeError(`${name} must be a number in ${minExclusive ? '(' : '['}${min}, ${max}], got ${value}`);
    }
  };
  integer('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  integer('segments', 0, maxSegments);
  real('skew', 0, 100);
  integer('vendors', 1, 2 ** 31 - 1);
  integer('users', 0, 2 ** 31 - 1);
  real('userSigma', 0, Number.MAX_VALUE, true);
  real('addProbability', 0, 1);
  real('repeatProbability', 0, 1);
  integer('reservoir', 0, maxReservoir);
  real('bots', 0, 1);
  integer('botUsers', 1, 0xffff);
  real('botBurst', 1, 1_000_000);
}
