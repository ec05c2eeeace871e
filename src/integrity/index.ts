export * from './digest.js';
export * from './multibase.js';
export * from './keys.js';
export * from './proof.js';
export * from './source.js';
export { loadSchema, validateAgainst } from './schemas.js';
export * from './manifest.js';
export * from './signers.js';
export * from './verify.js';
