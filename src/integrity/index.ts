export * from './digest.js';
export * from './multibase.js';
export * from './keys.js';
export * from './proof.js';
