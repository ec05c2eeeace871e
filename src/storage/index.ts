export { fsyncDirectory, writeFileDurably } from './durable-file.js';
