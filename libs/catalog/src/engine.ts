import type { CollectionName } from '@segment/model';

/**
 * What a catalog test runs against: the in-memory reference model, or the real pipeline.
 * One engine per test, so tests never see each other's documents.
 */
export interface Engine {
  /** Publishes documents to a collection, as a client would. They are already validated. */
  ingest(collection: CollectionName, documents: unknown[]): Promise<void>;
  /**
   * Waits until everything ingested so far is fully processed, then returns the collection's
   * fully reduced documents ordered by the collection's key.
   */
  read(collection: CollectionName): Promise<unknown[]>;
  /** Releases everything the test created. */
  close(): Promise<void>;
}

/** Creates a fresh, isolated engine for the named test. */
export type EngineFactory = (testName: string) => Promise<Engine>;
