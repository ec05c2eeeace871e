// Wires the admin API and the console into the running gateway: the parts they read (audit
// feed, health tracker, sessions, quarantines, approvals, policy, review store, admissions) are
// gathered here, so src/admin depends on interfaces only.
import type { JsonValue } from '../audit/index.js';
import { AdminApi, API_PREFIX, AuditFeed, ConsoleAssets, HealthTracker, type AdminListenerConfig, type AdminRoute, type AdminSources, type LogKeyAccess } from '../admin/index.js';
import type { ApprovalQueue } from '../approval/index.js';
import type { LoadedConfig } from '../config/index.js';
import type { Gateway } from '../gateway/index.js';
import { decideQuarantine, FileQuarantineStore, resolveFrom, trustConfigDefaults, type QuarantineStore } from '../integrity/index.js';
import type { Limits } from '../limits/index.js';
import type { PolicyStore } from '../policy/index.js';
import type { ReviewStore } from '../scan/index.js';
import { resolve } from 'node:path';
import type { RecordEvent } from './events.js';
import type { ServerAdmissions } from './integrity.js';

/** The audit event every operator action through the admin API writes. */
export const ADMIN_ACTION_EVENT = 'admin.action';

export interface ConsoleInputs {
  loaded: LoadedConfig;
  config: AdminListenerConfig;
  auditDir: string;
  /** The running log: it checks seals and checkpoint signatures for the record badge. */
  auditKeys?: LogKeyAccess;
  policy: PolicyStore | undefined;
  approvals: ApprovalQueue | undefined;
  limits: Limits | undefined;
  review: ReviewStore;
  admissions: ServerAdmissions;
  gateway: Gateway;
  record: RecordEvent;
  /** The replicas' shared quarantine store (src/cluster); absent: the state directory's file. */
  quarantines?: QuarantineStore;
}

export interface AdminConsole {
  feed: AuditFeed;
  health: HealthTracker;
  routes(inputs: ConsoleInputs): AdminRoute[];
}

/** Made before the gateway (its feed and tracker watch the audit path); its routes after. */
export function adminConsole(servers: readonly string[]): AdminConsole {
  const feed = new AuditFeed();
  const health = new HealthTracker(servers);
  return {
    feed,
    health,
    routes: (inputs) => {
      const api = new AdminApi(inputs.config, sources(inputs, feed, health));
      return [{ matches: (path) => path.startsWith(API_PREFIX), handle: (request, response, url) => api.handle(request, response, url) }, new ConsoleAssets()];
    },
  };
}

function sources(inputs: ConsoleInputs, feed: AuditFeed, health: HealthTracker): AdminSources {
  const { loaded, admissions, gateway, limits, review } = inputs;
  // The same file the gateway and `bastion quarantine` use; it reads the file again when another process changed it.
  const quarantines = inputs.quarantines ?? FileQuarantineStore.inDirectory(resolveFrom(resolve(loaded.baseDir, loaded.config.stateDir), loaded.config.integrity.quarantineDir ?? trustConfigDefaults.quarantineDir));
  return {
    auditDir: inputs.auditDir,
    ...(inputs.auditKeys === undefined ? {} : { auditKeys: inputs.auditKeys }),
    feed,
    health,
    policy: inputs.policy,
    approvals: inputs.approvals,
    quarantines: {
      list: () => quarantines.list(),
      get: (id) => quarantines.get(id),
      decide: (id, status) => decideQuarantine(loaded, quarantines, id, status),
    },
    servers: () =>
      Object.entries(loaded.config.servers).map(([name, server]) => {
        const refused = admissions.refused.get(name);
        return {
          name,
          transport: server.transport,
          admission: refused === undefined ? { ok: true as const, trust: admissions.admitted.get(name)?.trust ?? 'unsigned' } : { ok: false as const, reason: refused },
          minCertificationLevel: server.minCertificationLevel ?? 0,
        };
      }),
    sessions: () => gateway.sessionSummaries(),
    quotas: async () => {
      const quotas = loaded.config.quotas;
      const inFlight = Object.fromEntries(Object.keys(loaded.config.servers).map((server) => [server, limits?.concurrency.inFlight('server', server) ?? 0]));
      const rules = JSON.parse(JSON.stringify({ rates: quotas.rates, cpuBudgets: quotas.cpuBudgets, breakers: quotas.breakers, concurrency: quotas.concurrency, chain: quotas.chain })) as JsonValue;
      return { enabled: quotas.enabled, store: await storeState(limits), rules, inFlightPerServer: inFlight };
    },
    withheld: (limit) =>
      review
        .list()
        .slice(-limit)
        .reverse()
        .flatMap((item) => {
          const entry = review.get(item.id);
          return entry === undefined ? [] : [{ id: entry.id, ts: entry.ts, server: entry.server, subject: entry.subject, reason: entry.reason, findings: entry.findings.map(({ ruleId, severity, title }) => ({ ruleId, severity, title })) }];
        }),
    recordAction: (info) => inputs.record(ADMIN_ACTION_EVENT, info),
  };
}

/** How many counters the quota view reads from the store at most. */
const QUOTA_COUNTERS_SHOWN = 500;

/** The counters as the limit store (memory or Redis) holds them now; a store that does not answer says so. */
async function storeState(limits: Limits | undefined): Promise<{ [key: string]: JsonValue }> {
  if (limits === undefined) return { kind: 'none', counters: [] };
  try {
    const { counters, truncated } = await limits.store.snapshot(QUOTA_COUNTERS_SHOWN);
    counters.sort((a, b) => a.key.localeCompare(b.key));
    return { kind: limits.store.kind, reachable: true, truncated, counters: counters.map((counter) => ({ ...counter })) };
  } catch (error) {
    return { kind: limits.store.kind, reachable: false, error: error instanceof Error ? error.message : String(error), counters: [] };
  }
}
