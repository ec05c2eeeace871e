export { adminListenerSchema, OPERATOR_ROLES, type AdminListenerConfig, type OperatorRole, type OperatorTokenConfig } from './config.js';
export { OperatorTokens, roleAllows, type Operator } from './operators.js';
export { GatewayMetrics, type MetricSources, type MetricsOptions } from './metrics.js';
export { AdminListener, type AdminListenerOptions, type AdminRoute, type ReadinessCheck } from './listener.js';
export { AdminApi, API_PREFIX } from './api/router.js';
export { AuditFeed } from './api/feed.js';
export { HealthTracker } from './api/health.js';
export type { AdminSources } from './api/sources.js';
export { ConsoleAssets, CONSOLE_PATH } from './console/assets.js';
