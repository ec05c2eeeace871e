import { collectTextFields } from './analyzers/metadata.js';
import { identifierWords, splitClauses, type DirectiveDocument } from './directives.js';
import type { ServerMetadata } from './types.js';

/** Every property name anywhere in a schema (nested objects, items, anyOf, $defs …) and every string enum value. */
function schemaPropertyNames(schema: unknown, out: string[], depth = 0): void {
  if (typeof schema !== 'object' || schema === null || depth > 16) return;
  if (Array.isArray(schema)) {
    for (const child of schema) schemaPropertyNames(child, out, depth + 1);
    return;
  }
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && typeof value === 'object' && value !== null) out.push(...Object.keys(value));
    if (key === 'enum' && Array.isArray(value)) out.push(...value.filter((v): v is string => typeof v === 'string' && v.length <= 64));
    schemaPropertyNames(value, out, depth + 1);
  }
}

/**
 * Groups a server's text fields into documents, one per tool, prompt, resource and the server's
 * instructions: the unit that directives are judged against (a tool's own name, parameters and
 * stated purpose) and that the learned scorer scores.
 */
export function buildDocuments(server: ServerMetadata): DirectiveDocument[] {
  const fields = collectTextFields(server).filter((f) => !f.isIdentifier);
  const siblingTools = [...server.tools.map((t) => t.name), ...server.prompts.map((p) => p.name)];
  const docs = new Map<string, DirectiveDocument>();
  const get = (subject: string, ownNames: string[], purpose: string): DirectiveDocument => {
    let doc = docs.get(subject);
    if (!doc) {
      doc = { subject, fields: [], ownNames, siblingTools, purpose };
      docs.set(subject, doc);
    }
    return doc;
  };
  for (const tool of server.tools) {
    const own = [tool.name];
    schemaPropertyNames(tool.inputSchema, own);
    const first = splitClauses(tool.description ?? '')[0] ?? '';
    get(`tool:${tool.name}`, own, `${identifierWords(tool.name)} ${tool.title ?? ''} ${first}`);
  }
  for (const prompt of server.prompts) {
    const first = splitClauses(prompt.description ?? '')[0] ?? '';
    get(`prompt:${prompt.name}`, [prompt.name, ...(prompt.arguments ?? []).map((a) => a.name)], `${identifierWords(prompt.name)} ${prompt.title ?? ''} ${first}`);
  }
  for (const field of fields) {
    const subject = field.location.subject ?? 'server';
    const doc = docs.get(subject) ?? get(subject, [], subject === 'server' ? '' : identifierWords(subject.replace(/^\w+:/, '')));
    doc.fields.push({ text: field.text, location: field.location });
  }
  return [...docs.values()].filter((d) => d.fields.length > 0);
}
