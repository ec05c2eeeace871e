export { createBastion } from './bastion.js';
export type { Bastion, BastionOptions } from './bastion.js';
