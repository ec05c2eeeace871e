export { createLogger, silentLogger } from './log.js';
export type { Logger } from './log.js';
