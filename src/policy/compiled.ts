/**
 * The compiled form of a policy: what decide() walks. Built by load.ts, immutable afterwards.
 */
import type { NetworkSet } from '../net/cidr.js';
import type { DomainIndex, HostClassifier } from './host.js';
import type { CompiledSchedule } from './schedule.js';
import type { SourcePosition } from './yaml-source.js';
import type {
  ActionKind,
  Classification,
  CompiledPolicy,
  EffectiveAction,
  ExhaustedAction,
  PolicyStats,
  QuotaScopeKind,
  RuleTrace,
  Settings,
} from './types.js';

export interface CompiledRule {
  readonly index: number;
  readonly id: string;
  readonly description: string;
  readonly actionKind: ActionKind;
  readonly categories: ReadonlySet<string> | undefined;
  readonly sites: ReadonlySet<string> | undefined;
  readonly hosts: DomainIndex<true> | undefined;
  readonly hostList: readonly string[] | undefined;
  readonly groups: ReadonlySet<string> | undefined;
  readonly schedules: readonly CompiledSchedule[] | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly paths: RegExp | undefined;
  readonly pathList: readonly string[] | undefined;
  /** The action for every kind but quota. */
  readonly action: EffectiveAction;
  readonly quota: { readonly minutesPerDay: number; readonly per: QuotaScopeKind; readonly exhausted: ExhaustedAction } | undefined;
  /** No condition at all: every later rule is shadowed. */
  readonly catchAll: boolean;
  readonly source: SourcePosition;
  /** Shared trace entries, so the request path builds no strings. */
  readonly matchTrace: RuleTrace;
  readonly inspectTrace: RuleTrace;
}

export const NEEDS_INSPECTION_REASON = 'needs the method or path, unknown until the HTTPS request is inspected';

export interface CompiledDefault {
  readonly description: string;
  readonly actionKind: ActionKind;
  readonly action: EffectiveAction;
}

export const POLICY_INTERNALS: unique symbol = Symbol('leeway.policy.internals');

export interface PolicyInternals {
  readonly rules: readonly CompiledRule[];
  /** Rule indexes worth evaluating for a host in this category (others name other categories). */
  readonly candidatesByCategory: ReadonlyMap<string, readonly CompiledRule[]>;
  readonly candidatesWithoutCategory: readonly CompiledRule[];
  readonly default: CompiledDefault;
  readonly classifier: HostClassifier;
  readonly categoryKindOf: ReadonlyMap<string, 'leisure' | 'business' | 'other'>;
}

/** What the compiler hands to PolicyImpl: the public fields of CompiledPolicy plus the internals. */
export interface PolicyParts
  extends Pick<CompiledPolicy, 'settings' | 'files' | 'hash' | 'stats' | 'categoryNames' | 'siteNames' | 'groupNames' | 'categoryKinds'> {
  readonly rules: readonly CompiledRule[];
  readonly default: CompiledDefault;
  readonly classifier: HostClassifier;
  readonly userGroups: ReadonlyMap<string, string>;
  readonly networkGroups: NetworkSet<string>;
}

export class PolicyImpl implements CompiledPolicy {
  readonly settings: Settings;
  readonly files: readonly string[];
  readonly hash: string;
  readonly stats: PolicyStats;
  readonly categoryNames: readonly string[];
  readonly siteNames: readonly string[];
  readonly groupNames: readonly string[];
  readonly categoryKinds: Readonly<Record<string, 'leisure' | 'business' | 'other'>>;
  readonly ruleSummaries: readonly { readonly id: string; readonly description: string; readonly action: ActionKind }[];
  readonly [POLICY_INTERNALS]: PolicyInternals;
  private readonly userGroups: ReadonlyMap<string, string>;
  private readonly networkGroups: NetworkSet<string>;
  private readonly doNotInspect: ReadonlySet<string>;

  constructor(parts: PolicyParts) {
    this.settings = parts.settings;
    this.files = Object.freeze([...parts.files]);
    this.hash = parts.hash;
    this.stats = Object.freeze({ ...parts.stats });
    this.categoryNames = Object.freeze([...parts.categoryNames]);
    this.siteNames = Object.freeze([...parts.siteNames]);
    this.groupNames = Object.freeze([...parts.groupNames]);
    this.categoryKinds = Object.freeze({ ...parts.categoryKinds });
    this.ruleSummaries = Object.freeze(parts.rules.map((rule) => Object.freeze({ id: rule.id, description: rule.description, action: rule.actionKind })));
    this.userGroups = parts.userGroups;
    this.networkGroups = parts.networkGroups;
    this.doNotInspect = new Set(parts.settings.interception.doNotInspect);

    const candidatesByCategory = new Map<string, CompiledRule[]>();
    for (const name of parts.categoryNames) {
      candidatesByCategory.set(name, parts.rules.filter((rule) => rule.categories === undefined || rule.categories.has(name)));
    }
    this[POLICY_INTERNALS] = Object.freeze({
      rules: parts.rules,
      candidatesByCategory,
      candidatesWithoutCategory: parts.rules.filter((rule) => rule.categories === undefined),
      default: parts.default,
      classifier: parts.classifier,
      categoryKindOf: new Map(Object.entries(parts.categoryKinds)),
    });
    Object.freeze(this);
  }

  classify(host: string): Classification {
    const { category, site } = this[POLICY_INTERNALS].classifier.classifyRaw(host);
    return { category, site };
  }

  groupFor(who: { readonly user?: string; readonly clientIp?: string }): string | undefined {
    if (who.user !== undefined) {
      const byUser = this.userGroups.get(who.user);
      if (byUser !== undefined) return byUser;
    }
    if (who.clientIp !== undefined) return this.networkGroups.lookup(who.clientIp);
    return undefined;
  }

  isDoNotInspect(host: string): boolean {
    const { category } = this.classify(host);
    return category !== undefined && this.doNotInspect.has(category);
  }
}

export function internalsOf(policy: CompiledPolicy): PolicyInternals {
  const internals = (policy as Partial<PolicyImpl>)[POLICY_INTERNALS];
  if (internals === undefined) throw new TypeError('decide() needs a CompiledPolicy made by loadPolicy()');
  return internals;
}
