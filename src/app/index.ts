export { createBastion, SandboxRegistry } from './bastion.js';
export { packageDirsFor, sandboxScopes } from './sandbox.js';
export type { Bastion, BastionOptions } from './bastion.js';
export { policyInputs } from './policy-inputs.js';
