export { EventGenerator, exampleModel, botUserName, isBotUser, type GeneratorModel, type GeneratorOptions } from './generator.model.ts';
export { formatTimestamp, localUtcOffsetMinutes, offsetOfTimestamp, tickClock } from './format-timestamp.ts';
export { Prng } from './prng.ts';
export { ZipfDistribution } from './zipf.ts';
