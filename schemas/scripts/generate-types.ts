// Generates libs/model/src/schema-types.generated.ts from schemas/*.schema.json, so types are never
// written by hand. `npm run schemas:types` writes it; the model's unit test fails when it is stale.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const schemasDir = fileURLToPath(new URL('../', import.meta.url));
const target = new URL('../../libs/model/src/schema-types.generated.ts', import.meta.url);

/** Every titled schema becomes a named type; this root only gathers them. */
const gather = {
  type: 'object',
  properties: Object.fromEntries(
    [
      'event.schema.json',
      'derived.schema.json#/$defs/detail',
      'derived.schema.json#/$defs/membership',
      'derived.schema.json#/$defs/profile',
      'toggle.schema.json',
      'registers.schema.json#/$defs/toggle',
      'registers.schema.json#/$defs/pushProfile',
    ].map((ref, index) => [`t${index}`, { $ref: ref }]),
  ),
};

export async function generateSchemaTypes(): Promise<string> {
  const source = await compile(gather as never, 'Gathered', {
    bannerComment: '',
    cwd: schemasDir,
    additionalProperties: false,
    strictIndexSignatures: true,
    // Relative refs resolve to the files beside the schemas: generation never touches the network.
    $refOptions: { resolve: { http: false } },
  });
  const blocks = source.split(/\n(?=export )/).filter((block) => !/^export interface Gathered\b/.test(block.trim()));
  return `// Generated from schemas/*.schema.json by schemas/scripts/generate-types.ts. Do not edit.\n\n${blocks.map((b) => b.trim()).join('\n\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(target, await generateSchemaTypes());
  console.log(`wrote ${fileURLToPath(target)}`);
}
