// The least-privilege guard lives with its module (src/policy); this is its place in the guard list.
export { createPolicyGuard } from '../policy/index.js';
