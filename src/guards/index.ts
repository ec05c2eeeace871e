export { authenticationGuard } from './authn.js';
export { requestSizeGuard } from './request-size.js';
export { createValidationGuard } from './validate.js';
