import event from '@segment/schemas/event.schema.json' with { type: 'json' };
import derived from '@segment/schemas/derived.schema.json' with { type: 'json' };
import toggle from '@segment/schemas/toggle.schema.json' with { type: 'json' };
import registers from '@segment/schemas/registers.schema.json' with { type: 'json' };

/** A JSON Schema document or sub-schema, as read from schemas/. */
export type Schema = { readonly [keyword: string]: unknown } | boolean;

/** Every schema document of schemas/, by its `$id`. */
export const schemaDocuments: ReadonlyMap<string, Schema> = new Map(
  [event, derived, toggle, registers].map((document) => [document.$id, document as Schema]),
);

const base = 'https://segment.local/schemas/';

/** The named schemas of Segment's documents, as `$ref`s into the documents above. */
export const schemaRefs = {
  event: `${base}event.schema.json`,
  detail: `${base}derived.schema.json#/$defs/detail`,
  membership: `${base}derived.schema.json#/$defs/membership`,
  profile: `${base}derived.schema.json#/$defs/profile`,
  toggle: `${base}toggle.schema.json`,
  toggleRegister: `${base}registers.schema.json#/$defs/toggle`,
  pushProfileRegister: `${base}registers.schema.json#/$defs/pushProfile`,
} as const;

export type SchemaName = keyof typeof schemaRefs;

/** A schema that only refers to one of the named schemas; the reduce lib resolves it against schemaDocuments. */
export function schemaOf(name: SchemaName): Schema {
  return { $ref: schemaRefs[name] };
}
