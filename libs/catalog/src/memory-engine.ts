// The in-memory twin of the pipeline: the reference model behind the Engine port.
import { validators, type CollectionName, type Event } from '@segment/model';
import { ReferenceModel } from '@segment/segment';
import type { Engine } from './engine.ts';

const readers: { readonly [C in CollectionName]: (model: ReferenceModel) => unknown[] } = {
  'segment/events': (model) => model.events,
  'segment/memberships': (model) => model.memberships,
  'segment/profiles': (model) => model.profiles,
  'segment/toggles': (model) => model.toggles,
};

/** A fresh engine over an empty reference model; fits `EngineFactory` as is. */
export async function createMemoryEngine(): Promise<Engine> {
  const model = new ReferenceModel();
  return {
    async ingest(collection, documents) {
      if (collection !== 'segment/events') {
        throw new Error(`the memory engine derives ${collection} from segment/events; only segment/events accepts documents`);
      }
      // The runner validates too, but the model trusts its input, so the port checks it again.
      const events: Event[] = documents.map((document) => validators.event.assert(document));
      model.ingest(events);
    },
    async read(collection) {
      return readers[collection](model);
    },
    async close() {},
  };
}
