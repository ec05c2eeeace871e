export { CLIENT_FORMATS, CLIENT_IDS, isClientId, type BastionEndpoint, type ClientFormat, type ClientId, type LocationEnv } from './formats.js';
export { ClientConfigError, configPath, listClients, readClientConfig, setupClient, type ClientListing, type SetupRequest, type SetupResult } from './setup.js';
