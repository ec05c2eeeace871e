export * from './config.js';
export * from './definitions.js';
export * from './runtime.js';
