import { analyzeDirectives, directiveFindings, documentText, loadDirectiveData, splitClauses, type DirectiveDocument } from '../directives.js';
import { buildDocuments } from '../documents.js';
import { makeFinding } from '../finding.js';
import { featurize, modelOf, score, topContributions, type FeatureVector } from '../model.js';
import type { RuleSet } from '../rules.js';
import type { AttackClass, Finding, ServerMetadata } from '../types.js';

/** What the learned scorer sees of one document. */
export function documentFeatures(doc: DirectiveDocument, rules: RuleSet, withNames = false): { vector: FeatureVector; analysis: ReturnType<typeof analyzeDirectives> } {
  const analysis = analyzeDirectives(doc, rules);
  const model = modelOf(rules);
  return { analysis, vector: featurize(documentText(doc, rules), analysis.features, model?.dims, withNames) };
}

/** The class of the first demand the document's directives make (even one judged in scope), else hidden-instructions. */
function guessClass(features: string[], rules: RuleSet): AttackClass {
  const demands = loadDirectiveData(rules.dataDir).demands;
  for (const f of features) {
    const kind = /^d:([\w-]+)$/.exec(f)?.[1];
    const demand = demands.find((d) => d.kind === kind);
    if (demand) return demand.attackClass;
  }
  return 'hidden-instructions';
}

/** The clause of the document the model scores highest: where a reviewer should look. */
function strongestClause(doc: DirectiveDocument, rules: RuleSet): string {
  const model = modelOf(rules);
  if (!model) return '';
  let best = '';
  let bestScore = -1;
  for (const sentence of splitClauses(documentText(doc, rules))) {
    const p = score(model, featurize(sentence, [], model.dims));
    if (p > bestScore) { bestScore = p; best = sentence; }
  }
  return best;
}

/**
 * Directive findings (BST-M041..M051) and the learned scorer's finding (BST-M060) for one document.
 * `attackClass` overrides the class (a tool output is output-instructions whatever it demands).
 */
export function analyzeDocument(doc: DirectiveDocument, rules: RuleSet, attackClass?: AttackClass): Finding[] {
  // Feature names are only needed to explain a finding: scored without them, named when it fires.
  const { analysis, vector } = documentFeatures(doc, rules, false);
  const findings = directiveFindings(analysis.hits, attackClass);
  const model = modelOf(rules);
  if (!model) return findings;
  const p = score(model, vector);
  if (p < model.mediumAt) return findings;
  const named = featurize(documentText(doc, rules), analysis.features, model.dims, true);
  const top = topContributions(model, named).map((c) => `${c.name} (+${c.contribution.toFixed(2)})`);
  const cls = attackClass ?? analysis.hits[0]?.demand.attackClass ?? guessClass(analysis.features, rules);
  findings.push(makeFinding({
    ruleId: 'BST-M060', analyzer: 'metadata', title: 'Learned scorer: the text reads like tool poisoning', severity: p >= model.highAt ? 'high' : 'medium',
    confidence: Math.round(p * 100) / 100, location: { subject: doc.subject }, attackClass: cls,
    evidence: `p=${p.toFixed(3)}; strongest clause: "${strongestClause(doc, rules).slice(0, 160)}"`,
    why: `A logistic-regression model trained on poisoned and honest definitions (data/scan/model.json, ${model.trainedOn.documents} documents) scores this text ${p.toFixed(2)}. Features that weigh most: ${top.join(', ')}.`,
    remediation: 'Read the text as the model would; remove what does not describe this tool. If it is honest, suppress this finding with a reason.',
  }));
  return findings;
}

/** Directive and learned-scorer findings for every document of a server. */
export function analyzeIntent(server: ServerMetadata, rules: RuleSet): Finding[] {
  return buildDocuments(server).flatMap((doc) => analyzeDocument(doc, rules));
}
