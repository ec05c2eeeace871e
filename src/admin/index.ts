export { adminListenerSchema, OPERATOR_ROLES, type AdminListenerConfig, type OperatorRole, type OperatorTokenConfig } from './config.js';
export { OperatorTokens, roleAllows, type Operator } from './operators.js';
export { GatewayMetrics, type MetricSources, type MetricsOptions } from './metrics.js';
export { AdminListener, type AdminListenerOptions, type ReadinessCheck } from './listener.js';
export { UpstreamReadiness, type StartStatus } from './readiness.js';
