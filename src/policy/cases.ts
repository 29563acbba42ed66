/**
 * Policy test cases (`leeway test`): YAML files beside the policies, in `tests/*.yaml` or
 * `*.test.yaml`, never merged as policy. Each case is a request, a time, who, the usage so far,
 * and the expected action and rule.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { decide } from './decide.js';
import type { PolicyProblem } from './load.js';
import type { CompiledPolicy, Decision, RequestFacts, UsageView } from './types.js';
import { describeAjvError } from './schema.js';
import { YamlSource } from './yaml-source.js';

/** Who and what, as given on the `explain` command line or in a test case. */
export interface RequestSpec {
  readonly url: string;
  readonly method?: string;
  /** CONNECT not intercepted: method and path unknown. */
  readonly tunnel?: boolean;
  readonly user?: string;
  readonly group?: string;
  readonly client?: string;
  /** Minutes used today, for every scope, or per category/site name. */
  readonly minutesUsed?: number | Readonly<Record<string, number>>;
}

export interface ResolvedRequest {
  readonly facts: RequestFacts;
  readonly usage: UsageView;
}

/** Turn a URL and who into decide() inputs. Throws TypeError on an invalid URL. */
export function resolveRequest(spec: RequestSpec, policy: CompiledPolicy): ResolvedRequest {
  const url = new URL(spec.url);
  const group = spec.group ?? policy.groupFor({ user: spec.user, clientIp: spec.client });
  const port = url.port === '' ? undefined : Number(url.port);
  const facts: RequestFacts = spec.tunnel === true
    ? { host: url.hostname, port, group }
    : { host: url.hostname, port, method: (spec.method ?? 'GET').toUpperCase(), path: url.pathname, group };
  const used = spec.minutesUsed;
  const usage: UsageView = {
    minutesUsedToday: (scope) => (used === undefined ? 0 : typeof used === 'number' ? used : (used[scope.name] ?? 0)),
  };
  return { facts, usage };
}

export interface PolicyCase {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly name: string;
  readonly request: RequestSpec;
  readonly at: string;
  readonly expect: { readonly action: string; readonly rule?: string; readonly needsInspection?: boolean };
}

const CASE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['cases'],
  properties: {
    cases: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url', 'at', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1 },
          url: { type: 'string', pattern: '^https?://' },
          at: { type: 'string', minLength: 1 },
          method: { type: 'string', pattern: '^[A-Za-z]+$' },
          tunnel: { type: 'boolean' },
          user: { type: 'string' },
          group: { type: 'string' },
          client: { type: 'string' },
          minutesUsed: { type: ['integer', 'object'], minimum: 0, additionalProperties: { type: 'integer', minimum: 0 } },
          expect: {
            type: 'object',
            additionalProperties: false,
            required: ['action'],
            properties: {
              action: { enum: ['allow', 'coach', 'suggest', 'readonly', 'block'] },
              rule: { type: 'string' },
              needsInspection: { type: 'boolean' },
            },
          },
        },
      },
    },
  },
} as const;

const validateCases = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(CASE_SCHEMA);

/** A case's time must name its offset, or it would mean different instants on different machines. */
function isInstant(text: string): boolean {
  return /(?:Z|[+-]\d{2}:?\d{2})$/i.test(text) && !Number.isNaN(Date.parse(text));
}

async function caseFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const root = resolve(dir);
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.isFile() && /\.test\.ya?ml$/.test(entry.name)) files.push(join(root, entry.name));
  }
  try {
    for (const entry of await readdir(join(root, 'tests'), { withFileTypes: true })) {
      if (entry.isFile() && /\.ya?ml$/.test(entry.name)) files.push(join(root, 'tests', entry.name));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return files.sort();
}

export async function loadCases(dir: string): Promise<{ cases: PolicyCase[]; errors: PolicyProblem[] }> {
  const cases: PolicyCase[] = [];
  const errors: PolicyProblem[] = [];
  for (const file of await caseFiles(dir)) {
    const src = new YamlSource(file, await readFile(file, 'utf8'));
    const syntax = src.syntaxErrors();
    for (const problem of syntax) errors.push({ ...problem.pos, message: problem.message });
    if (syntax.length > 0) continue;
    const data: unknown = src.doc.toJS();
    const valid = validateCases(data);
    for (const error of valid ? [] : (validateCases.errors ?? [])) {
      const problem = describeAjvError(error);
      if (problem !== undefined) errors.push({ ...src.at(problem.path, problem.onKey), message: problem.message });
    }
    const entries = (data as { cases?: unknown } | null)?.cases;
    (Array.isArray(entries) ? entries : []).forEach((entry: unknown, index) => {
      const at = (entry as { at?: unknown } | null)?.at;
      if (typeof at === 'string' && !isInstant(at)) {
        errors.push({ ...src.at(['cases', index, 'at']), message: `invalid time "${at}": use ISO 8601 with an offset, e.g. 2026-11-26T12:30:00+01:00` });
      }
    });
    if (!valid) continue;
    const raw = (data as { cases: (RequestSpec & { name: string; at: string; expect: PolicyCase['expect'] })[] }).cases;
    raw.forEach((entry, index) => {
      const pos = src.at(['cases', index]);
      if (!isInstant(entry.at)) return;
      const { name, at, expect, ...request } = entry;
      cases.push({ file, line: pos.line, col: pos.col, name, at, expect, request });
    });
  }
  return { cases, errors };
}

export interface CaseResult {
  readonly case: PolicyCase;
  readonly passed: boolean;
  readonly decision: Decision | undefined;
  readonly failure: string | undefined;
}

export function runCase(policyCase: PolicyCase, policy: CompiledPolicy): CaseResult {
  let resolved: ResolvedRequest;
  try {
    resolved = resolveRequest(policyCase.request, policy);
  } catch (error) {
    return { case: policyCase, passed: false, decision: undefined, failure: `invalid request: ${error instanceof Error ? error.message : String(error)}` };
  }
  const decision = decide(resolved.facts, policy, Date.parse(policyCase.at), resolved.usage, { fullTrace: true });
  const { expect } = policyCase;
  const problems: string[] = [];
  if (decision.action.kind !== expect.action) problems.push(`action ${decision.action.kind}, expected ${expect.action}`);
  if (expect.rule !== undefined && decision.ruleId !== expect.rule) problems.push(`rule ${decision.ruleId}, expected ${expect.rule}`);
  if (expect.needsInspection !== undefined && decision.needsInspection !== expect.needsInspection) {
    problems.push(`needsInspection ${decision.needsInspection}, expected ${expect.needsInspection}`);
  }
  return { case: policyCase, passed: problems.length === 0, decision, failure: problems.length === 0 ? undefined : `got ${problems.join('; ')}` };
}
