export { CurationView, curationFromConfig, effectiveCuration, type CurationSource, type UnknownToolWarning } from './view.js';
export { curationProblems } from './problems.js';
export { checkCurationPin, curationPin, type CurationPinStatus } from './pin.js';
export { agentCurationSchema, toolCurationSchemaProperties, TOOL_NAME_PATTERN, type AgentCurationConfig, type CuratedServerConfig, type ToolCurationConfig } from './config.js';
export { reportCuration } from './report.js';
