export * from './config.js';
export * from './definitions.js';
export * from './runtime.js';
export * from './pinning.js';
