/**
 * The JSON Schema of a policy file (schema/policy.schema.json), compiled once with ajv, and its
 * errors turned into messages a person can act on, each with the YAML path it is about.
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { formatPath } from './yaml-source.js';
import type { YamlPath } from './yaml-source.js';

// Resolved from src/policy and from dist/policy alike.
const SCHEMA_URL = new URL('../../schema/policy.schema.json', import.meta.url);

let validator: Promise<ValidateFunction> | undefined;

function getValidator(): Promise<ValidateFunction> {
  validator ??= readFile(SCHEMA_URL, 'utf8').then((text) => {
    const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true });
    return ajv.compile(JSON.parse(text) as object);
  });
  return validator;
}

export interface SchemaProblem {
  readonly path: YamlPath;
  /** Point at the key rather than the value (unknown keys, bad names). */
  readonly onKey: boolean;
  readonly message: string;
}

export async function schemaErrors(data: unknown): Promise<SchemaProblem[]> {
  const validate = await getValidator();
  if (validate(data)) return [];
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const error of validate.errors ?? []) {
    const problem = describeAjvError(error);
    if (problem === undefined) continue;
    const key = `${problem.path.join('/')}\0${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

/** An ajv error in words, with the YAML path it is about (undefined for a redundant summary error). */
export function describeAjvError(error: ErrorObject): SchemaProblem | undefined {
  const path = pointerToPath(error.instancePath);
  const at = (p: YamlPath) => (p.length === 0 ? 'file' : formatPath(p));
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return { path: [...path, key], onKey: true, message: `${at(path)}: unknown key "${key}"` };
    }
    case 'required':
      return { path, onKey: false, message: `${at(path)}: missing required key "${String(params.missingProperty)}"` };
    case 'enum':
      return { path, onKey: false, message: `${at(path)}: must be one of ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'type': {
      const types = String(params.type).split(',').map((type) => (type === 'array' ? 'a list' : type === 'object' ? 'a mapping' : `a ${type}`));
      return { path, onKey: false, message: `${at(path)}: must be ${types.join(' or ')}` };
    }
    case 'propertyNames':
      // The nested pattern error names the key; this summary adds nothing.
      return undefined;
    case 'pattern': {
      if (error.propertyName !== undefined) {
        return { path: [...path, error.propertyName], onKey: true, message: `${at(path)}: name "${error.propertyName}" must use lower-case letters, digits, - and _` };
      }
      return { path, onKey: false, message: `${at(path)}: ${patternHint(error.schemaPath, String(params.pattern))}` };
    }
    default:
      return { path, onKey: false, message: `${at(path)}: ${error.message ?? error.keyword}` };
  }
}

function patternHint(schemaPath: string, pattern: string): string {
  if (schemaPath.includes('/time/')) return 'must be a time HH:MM';
  if (schemaPath.includes('/name/')) return 'must use lower-case letters, digits, - and _';
  if (schemaPath.includes('/domain/')) return 'must be a domain name (no spaces or slashes)';
  if (pattern === '^/') return 'must start with /';
  if (pattern === '^[A-Z]+$') return 'must be an upper-case HTTP method';
  if (pattern.startsWith('^https?')) return 'must be an http:// or https:// URL';
  return `must match ${pattern}`;
}
