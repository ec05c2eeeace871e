import { readFileSync } from 'node:fs';
import { makeFinding } from './finding.js';
import { verifyDocument, type TrustedKey } from './signing.js';
import { isSeverity, type Finding } from './types.js';

export interface Incident {
  date: string;
  severity: Finding['severity'];
  summary: string;
  reference?: string;
}

export interface PublisherRecord {
  /** A publisher id (npm scope/user, registry namespace) or a signing key id. */
  id: string;
  keys?: string[];
  packages?: string[];
  /** 0 (distrusted) .. 5 (well established). */
  rating: number;
  incidents?: Incident[];
}

export interface ReputationFile {
  version: 1;
  issued: string;
  publishers: PublisherRecord[];
}

export interface LoadedReputation {
  file: ReputationFile;
  path: string;
  signer: string;
}

export class ReputationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReputationError';
  }
}

/** Loads and verifies the signed reputation file; an unsigned or tampered file is refused. */
export function loadReputation(path: string, trusted: TrustedKey[]): LoadedReputation {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ReputationError(`${path}: cannot read reputation file (${(error as Error).message})`);
  }
  const signer = verifyDocument(doc, trusted, 'reputation', path);
  const file = doc as Partial<ReputationFile>;
  if (file.version !== 1 || !Array.isArray(file.publishers)) throw new ReputationError(`${path}: expected { "version": 1, "issued", "publishers": [...] }`);
  file.publishers.forEach((p, i) => {
    if (typeof p.id !== 'string' || typeof p.rating !== 'number' || p.rating < 0 || p.rating > 5) throw new ReputationError(`${path}: publishers[${i}] needs id and a rating 0..5`);
    (p.incidents ?? []).forEach((inc, j) => {
      if (!isSeverity(inc.severity) || typeof inc.summary !== 'string') throw new ReputationError(`${path}: publishers[${i}].incidents[${j}] needs severity and summary`);
    });
  });
  return { file: file as ReputationFile, path, signer: signer.id };
}

export interface ReputationSubject {
  publisherKey?: string;
  publisherId?: string;
  packageName?: string;
}

export function findPublisher(rep: ReputationFile, subject: ReputationSubject): PublisherRecord | undefined {
  return rep.publishers.find((p) =>
    (subject.publisherId !== undefined && p.id === subject.publisherId) ||
    (subject.publisherKey !== undefined && (p.id === subject.publisherKey || (p.keys ?? []).includes(subject.publisherKey))) ||
    (subject.packageName !== undefined && (p.packages ?? []).includes(subject.packageName)));
}

/** Ratings and incidents become findings whose evidence names the file and its signer. */
export function reputationFindings(rep: LoadedReputation, subject: ReputationSubject): Finding[] {
  const publisher = findPublisher(rep.file, subject);
  const source = `source: ${rep.path} (signed by ${rep.signer}, issued ${rep.file.issued})`;
  if (!publisher) {
    return [makeFinding({ ruleId: 'BST-R003', analyzer: 'reputation', title: 'Publisher unknown to the reputation file', severity: 'info', confidence: 1, location: { subject: 'publisher' }, evidence: `no record for ${subject.publisherId ?? subject.publisherKey ?? subject.packageName ?? '(none)'}; ${source}`, why: 'No rating is known for this publisher.', remediation: 'Review the publisher before adding a rating.' })];
  }
  const findings: Finding[] = [];
  const location = { subject: `publisher:${publisher.id}` };
  if (publisher.rating < 2) {
    findings.push(makeFinding({ ruleId: 'BST-R001', analyzer: 'reputation', title: 'Low publisher rating', severity: publisher.rating < 1 ? 'high' : 'medium', confidence: 0.7, location, evidence: `rating ${publisher.rating}/5; ${source}`, why: 'The local reputation file rates this publisher poorly.', remediation: 'Prefer another publisher, or review and update the rating.' }));
  } else {
    findings.push(makeFinding({ ruleId: 'BST-R000', analyzer: 'reputation', title: 'Publisher rating', severity: 'info', confidence: 1, location, evidence: `rating ${publisher.rating}/5; ${source}`, why: 'Shown for context; contributes no points.', remediation: 'None.' }));
  }
  for (const incident of publisher.incidents ?? []) {
    findings.push(makeFinding({ ruleId: 'BST-R002', analyzer: 'reputation', title: 'Reported incident for this publisher', severity: incident.severity, confidence: 0.7, location, evidence: `${incident.date}: ${incident.summary}${incident.reference ? ` (${incident.reference})` : ''}; ${source}`, why: 'An incident involving this publisher was reported.', remediation: 'Read the incident and decide whether it affects this server.', discriminator: `${incident.date}|${incident.summary}` }));
  }
  return findings;
}
