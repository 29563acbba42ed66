/**
 * Active-minute accounting (issue 5, item 1). A minute counts for a person and a site when the
 * person sent at least one request, or client-to-origin tunnel bytes, to that site during that
 * clock minute; what an origin pushes alone (a background tab's keep-alive) never counts. A
 * person's browsing minutes count each minute once however many sites it touched, so leisure
 * time can be reported as a true fraction of the whole.
 *
 * Everything is per local day in the policy's time zone and forgotten at local midnight: the
 * pseudonyms rotate daily anyway, so keeping yesterday's people would only cost memory. The
 * clock is always passed in (`at`, epoch ms), never read here.
 */
import type { QuotaScopeKind, UsageView } from '../policy/types.js';
import { LocalDayCalendar } from './local-day.js';
import type { LocalDay } from './local-day.js';

export type CategoryKind = 'leisure' | 'business' | 'other';

/** Bands of daily minutes for `leeway_daily_minutes_people{band}`: lower bounds, in minutes. */
export const MINUTE_BANDS = [
  { name: '0-15', from: 0 },
  { name: '15-30', from: 15 },
  { name: '30-60', from: 30 },
  { name: '60-120', from: 60 },
  { name: '120+', from: 120 },
] as const;
export type MinuteBand = (typeof MINUTE_BANDS)[number]['name'];

export const PAGE_KINDS = ['coach', 'suggest', 'block', 'readonly'] as const;
export type PageKind = (typeof PAGE_KINDS)[number];
export const PAGE_OUTCOMES = ['shown', 'continued', 'alternative'] as const;
export type PageOutcome = (typeof PAGE_OUTCOMES)[number];
export const PURPOSES = ['business', 'break', 'unsaid'] as const;
export type Purpose = (typeof PURPOSES)[number];

/** One unit of activity: a request, or client-to-origin bytes in a tunnel. */
export interface Activity {
  readonly pseudonym: string;
  /** Epoch ms. */
  readonly at: number;
  /** Policy names; undefined folds into `other`. */
  readonly category?: string | undefined;
  readonly site?: string | undefined;
  readonly group?: string | undefined;
}

/** What one activity added, for the counters fed at event time. */
export interface ActivityResult {
  /** The person's first browsing minute in this clock minute. */
  readonly browsingMinute: boolean;
  /** A new person-minute on this (category, site). */
  readonly siteMinute: boolean;
  readonly category: string;
  readonly site: string;
  readonly group: string;
}

export interface TodaySummary {
  /** Local date `YYYY-MM-DD`. */
  readonly day: string;
  /** Epoch ms from which these figures were counted (midnight, or when the ledger started that day). */
  readonly since: number;
  readonly activePeople: number;
  readonly browsingPersonMinutes: number;
  readonly leisurePersonMinutes: number;
  readonly businessPersonMinutes: number;
  /** Leisure (business) person-minutes divided by active people: the average person's day. */
  readonly leisureMinutesPerActivePerson: number;
  readonly businessMinutesPerActivePerson: number;
  readonly pages: Readonly<Record<PageKind, Readonly<Record<PageOutcome, number>>>>;
  readonly purposeAnswers: Readonly<Record<Purpose, number>>;
  readonly quotaExhaustions: number;
}

export interface UsageLedgerOptions {
  /** IANA zone of the daily rollover (the policy's `settings.timeZone`). */
  readonly timeZone: string;
  /** Kind of a category (leisure, business, other), read at summary time so policy reloads apply. */
  readonly categoryKind?: (category: string) => CategoryKind;
}

const OTHER = 'other';
const MINUTE_MS = 60_000;
/** Bits returned by UsageLedger.count(). */
export const BROWSING_MINUTE = 1;
export const SITE_MINUTE = 2;

/**
 * One person today, kept small: 100,000 people must fit in a few tens of MB. Scope counters are
 * flat triples of small integers (scope id, last minute counted, minutes today) in one array,
 * which V8 stores unboxed; scope ids index the ledger's table of category and site names.
 */
interface Person {
  lastMinute: number;
  minutes: number;
  /** The first group seen today; a person reaching us from a second network is rare. */
  group: string;
  otherGroups: string[] | undefined;
  scopes: number[];
}

/** A category and a site as the ledger's scope ids (UsageLedger.scopes()). */
export interface ScopePair {
  /** The category's name, `other` when none. */
  readonly category: string;
  readonly categoryId: number;
  readonly siteId: number;
}

interface ScopeName {
  readonly kind: 'c' | 's';
  readonly name: string;
}

export class UsageLedger {
  #calendar: LocalDayCalendar;
  readonly #categoryKind: (category: string) => CategoryKind;
  #day: LocalDay | undefined;
  #since = 0;
  #people = new Map<string, Person>();
  #groupPeople = new Map<string, number>();
  /** Bumped whenever #groupPeople changes, so label decisions built from it know when to look again. */
  #groupsVersion = 0;
  /** `category\0group` → distinct people today. */
  #categoryGroupPeople = new Map<string, number>();
  /** category → people per band (index into MINUTE_BANDS). */
  #bands = new Map<string, number[]>();
  /** category → person-minutes today. */
  #categoryMinutes = new Map<string, number>();
  #browsingMinutes = 0;
  #pages = emptyPages();
  #purposes = emptyPurposes();
  #quotaExhaustions = 0;
  /** `pseudonym\0kind\0name` of quotas used up today: only people who hit one are held. */
  #exhausted = new Set<string>();
  // Scope ids, kept across days: category and site names come from the policy, so they are few.
  readonly #categoryIds = new Map<string, number>();
  readonly #siteIds = new Map<string, number>();
  readonly #scopeNames: ScopeName[] = [];

  constructor(options: UsageLedgerOptions) {
    this.#calendar = new LocalDayCalendar(options.timeZone);
    this.#categoryKind = options.categoryKind ?? (() => 'other');
  }

  get timeZone(): string {
    return this.#calendar.timeZone;
  }

  /**
   * A reloaded policy may name another zone. The day being counted keeps the end it was given
   * (changing it mid-day would cut the day short or count one twice); the new zone decides the
   * next rollover and every one after.
   */
  setTimeZone(timeZone: string): void {
    if (timeZone !== this.#calendar.timeZone) this.#calendar = new LocalDayCalendar(timeZone);
  }

  /** The local day being counted, or undefined before the first event. */
  get day(): LocalDay | undefined {
    return this.#day;
  }

  /**
   * Move the ledger's day to the one containing `at`; crossing a local midnight forgets every
   * person and daily figure. Events are expected in time order; one from an earlier day than
   * the current one (a late tunnel report) is counted in the current day rather than reopening
   * a closed one.
   */
  advance(at: number): void {
    const day = this.#day;
    if (day !== undefined && at < day.end) return;
    const next = this.#calendar.dayOf(at);
    if (day !== undefined) this.#forgetDay();
    this.#day = next;
    this.#since = day === undefined ? at : next.start;
  }

  /** Count one request, or one burst of client-to-origin tunnel bytes. */
  record(activity: Activity): ActivityResult {
    const flags = this.count(activity.pseudonym, activity.at, activity.category, activity.site, activity.group);
    return {
      browsingMinute: (flags & BROWSING_MINUTE) !== 0,
      siteMinute: (flags & SITE_MINUTE) !== 0,
      category: activity.category ?? OTHER,
      site: activity.site ?? OTHER,
      group: activity.group ?? OTHER,
    };
  }

  /**
   * record() without its argument and result objects, for the per-request path: returns
   * BROWSING_MINUTE and SITE_MINUTE bits.
   */
  count(pseudonym: string, at: number, category: string | undefined, site: string | undefined, group: string | undefined): number {
    return this.countIn(pseudonym, at, this.scopes(category, site), group);
  }

  /**
   * A category and site resolved to the ledger's scopes once, for a caller that counts the same
   * pair often (the account stage keeps one per label combination): countIn() then looks up
   * neither name. Valid for the ledger's lifetime; scopes outlive the day's rollover.
   */
  scopes(category: string | undefined, site: string | undefined): ScopePair {
    const categoryName = category ?? OTHER;
    const siteName = site ?? OTHER;
    return { category: categoryName, categoryId: this.#scopeId('c', categoryName), siteId: this.#scopeId('s', siteName) };
  }

  /** count() for a pair from scopes(). */
  countIn(pseudonym: string, at: number, pair: ScopePair, group_: string | undefined): number {
    this.advance(at);
    const category = pair.category;
    const group = group_ ?? OTHER;
    const minute = Math.floor(at / MINUTE_MS);

    let person = this.#people.get(pseudonym);
    if (person === undefined) {
      person = { lastMinute: -1, minutes: 0, group, otherGroups: undefined, scopes: [] };
      this.#people.set(pseudonym, person);
      this.#groupPeople.set(group, (this.#groupPeople.get(group) ?? 0) + 1);
      this.#groupsVersion += 1;
    } else if (person.group !== group && person.otherGroups?.includes(group) !== true) {
      (person.otherGroups ??= []).push(group);
      this.#groupPeople.set(group, (this.#groupPeople.get(group) ?? 0) + 1);
      this.#groupsVersion += 1;
      // Already known in some categories under another group: count them there too.
      for (let i = 0; i < person.scopes.length; i += 3) {
        const scope = this.#scopeNames[person.scopes[i] as number];
        if (scope?.kind === 'c') this.#bumpCategoryGroup(scope.name, group);
      }
    }

    // Minutes are epoch minutes: every IANA zone in use today is offset by whole minutes, so a
    // UTC clock minute is a local clock minute too.
    let browsingMinute = false;
    if (minute > person.lastMinute) {
      person.lastMinute = minute;
      person.minutes += 1;
      this.#browsingMinutes += 1;
      browsingMinute = true;
    }

    const scopes = person.scopes;
    const c = this.#scopeIndex(person, pair.categoryId);
    if (minute > (scopes[c + 1] as number)) {
      const minutes = scopes[c + 2] as number;
      scopes[c + 1] = minute;
      scopes[c + 2] = minutes + 1;
      this.#moveBand(category, minutes, minutes + 1);
      this.#categoryMinutes.set(category, (this.#categoryMinutes.get(category) ?? 0) + 1);
    }
    const s = this.#scopeIndex(person, pair.siteId);
    let siteMinute = false;
    if (minute > (scopes[s + 1] as number)) {
      scopes[s + 1] = minute;
      scopes[s + 2] = (scopes[s + 2] as number) + 1;
      siteMinute = true;
    }
    return (browsingMinute ? BROWSING_MINUTE : 0) | (siteMinute ? SITE_MINUTE : 0);
  }

  /** Minutes used today by one person, for quota rules. A person not seen today has used 0. */
  usageView(pseudonym: string): UsageView {
    // Looked up at call time, so a view taken before the person's first request stays true;
    // a small object rather than a closure, since the proxy asks for one per request.
    return new PersonUsage(this, pseudonym);
  }

  /** Minutes a person used today in one category or site. */
  minutesUsedToday(pseudonym: string, scope: { kind: QuotaScopeKind; name: string }): number {
    const person = this.#people.get(pseudonym);
    if (person === undefined) return 0;
    const id = (scope.kind === 'category' ? this.#categoryIds : this.#siteIds).get(scope.name);
    if (id === undefined) return 0;
    for (let i = 0; i < person.scopes.length; i += 3) if (person.scopes[i] === id) return person.scopes[i + 2] as number;
    return 0;
  }

  /** A person's total browsing minutes today. */
  browsingMinutesToday(pseudonym: string): number {
    return this.#people.get(pseudonym)?.minutes ?? 0;
  }

  /**
   * Note that a person has used up a quota. True only the first time per person, scope and day,
   * so `leeway_quota_exhausted_total` counts people, not the requests refused after.
   */
  quotaExhausted(pseudonym: string, scope: { kind: QuotaScopeKind; name: string }, at: number): boolean {
    this.advance(at);
    const key = `${pseudonym}\0${scope.kind}\0${scope.name}`;
    if (this.#exhausted.has(key)) return false;
    this.#exhausted.add(key);
    this.#quotaExhaustions += 1;
    return true;
  }

  /** Count a page event for today's summary. */
  pageEvent(page: PageKind, outcome: PageOutcome, at: number): void {
    this.advance(at);
    this.#pages[page][outcome] += 1;
  }

  purposeAnswer(purpose: Purpose, at: number): void {
    this.advance(at);
    this.#purposes[purpose] += 1;
  }

  /** People seen today in a group: the k-anonymity test for group labels. */
  groupPeopleToday(group: string): number {
    return this.#groupPeople.get(group) ?? 0;
  }

  /** Changes whenever the people per group (peopleByGroup) change, the day's rollover included. */
  get groupsVersion(): number {
    return this.#groupsVersion;
  }

  get activePeople(): number {
    return this.#people.size;
  }

  /**
   * Distinct people who browsed today per group, raw group names (the metrics fold small groups).
   * A person seen from two groups' networks counts in each, as groupPeopleToday() does.
   */
  peopleByGroup(): { group: string; people: number }[] {
    const out: { group: string; people: number }[] = [];
    for (const [group, people] of this.#groupPeople) out.push({ group, people });
    return out;
  }

  /** Distinct people today per (category, group), raw group names (the metrics fold small groups). */
  peopleByCategoryAndGroup(): { category: string; group: string; people: number }[] {
    const out: { category: string; group: string; people: number }[] = [];
    for (const [key, people] of this.#categoryGroupPeople) {
      const cut = key.indexOf('\0');
      out.push({ category: key.slice(0, cut), group: key.slice(cut + 1), people });
    }
    return out;
  }

  /** People per band of daily minutes, per category. */
  peopleByBand(): { category: string; band: MinuteBand; people: number }[] {
    const out: { category: string; band: MinuteBand; people: number }[] = [];
    for (const [category, counts] of this.#bands) {
      MINUTE_BANDS.forEach((band, index) => out.push({ category, band: band.name, people: counts[index] ?? 0 }));
    }
    return out;
  }

  /** Figures for the status page. Pass the current time so a quiet night still rolls over. */
  todaySummary(at: number): TodaySummary {
    this.advance(at);
    let leisure = 0;
    let business = 0;
    for (const [category, minutes] of this.#categoryMinutes) {
      const kind = this.#categoryKind(category);
      if (kind === 'leisure') leisure += minutes;
      else if (kind === 'business') business += minutes;
    }
    const active = this.#people.size;
    return {
      day: this.#day?.date ?? '',
      since: this.#since,
      activePeople: active,
      browsingPersonMinutes: this.#browsingMinutes,
      leisurePersonMinutes: leisure,
      businessPersonMinutes: business,
      leisureMinutesPerActivePerson: active === 0 ? 0 : leisure / active,
      businessMinutesPerActivePerson: active === 0 ? 0 : business / active,
      pages: structuredClone(this.#pages),
      purposeAnswers: { ...this.#purposes },
      quotaExhaustions: this.#quotaExhaustions,
    };
  }

  #scopeId(kind: 'c' | 's', name: string): number {
    const ids = kind === 'c' ? this.#categoryIds : this.#siteIds;
    let id = ids.get(name);
    if (id === undefined) {
      id = this.#scopeNames.length;
      this.#scopeNames.push({ kind, name });
      ids.set(name, id);
    }
    return id;
  }

  /** Where the person's triple for this scope starts, created (and counted per group) when new. */
  #scopeIndex(person: Person, id: number): number {
    const scopes = person.scopes;
    for (let i = 0; i < scopes.length; i += 3) if (scopes[i] === id) return i;
    scopes.push(id, -1, 0);
    const scope = this.#scopeNames[id];
    if (scope?.kind === 'c') {
      this.#bumpCategoryGroup(scope.name, person.group);
      for (const g of person.otherGroups ?? []) this.#bumpCategoryGroup(scope.name, g);
    }
    return scopes.length - 3;
  }

  #bumpCategoryGroup(category: string, group: string): void {
    const key = `${category}\0${group}`;
    this.#categoryGroupPeople.set(key, (this.#categoryGroupPeople.get(key) ?? 0) + 1);
  }

  #moveBand(category: string, from: number, to: number): void {
    let counts = this.#bands.get(category);
    if (counts === undefined) {
      counts = MINUTE_BANDS.map(() => 0);
      this.#bands.set(category, counts);
    }
    const before = from === 0 ? -1 : bandIndex(from);
    const after = bandIndex(to);
    if (before === after) return;
    if (before >= 0) counts[before] = (counts[before] ?? 0) - 1;
    counts[after] = (counts[after] ?? 0) + 1;
  }

  #forgetDay(): void {
    this.#people = new Map();
    this.#groupPeople = new Map();
    this.#groupsVersion += 1;
    this.#categoryGroupPeople = new Map();
    this.#bands = new Map();
    this.#categoryMinutes = new Map();
    this.#browsingMinutes = 0;
    this.#pages = emptyPages();
    this.#purposes = emptyPurposes();
    this.#quotaExhaustions = 0;
    this.#exhausted = new Set();
  }
}

class PersonUsage implements UsageView {
  constructor(
    private readonly ledger: UsageLedger,
    private readonly pseudonym: string,
  ) {}

  minutesUsedToday(scope: { kind: QuotaScopeKind; name: string }): number {
    return this.ledger.minutesUsedToday(this.pseudonym, scope);
  }
}

function bandIndex(minutes: number): number {
  for (let i = MINUTE_BANDS.length - 1; i >= 0; i -= 1) {
    if (minutes >= (MINUTE_BANDS[i]?.from ?? 0)) return i;
  }
  return 0;
}

function emptyPages(): Record<PageKind, Record<PageOutcome, number>> {
  const pages = {} as Record<PageKind, Record<PageOutcome, number>>;
  for (const page of PAGE_KINDS) pages[page] = { shown: 0, continued: 0, alternative: 0 };
  return pages;
}

function emptyPurposes(): Record<Purpose, number> {
  return { business: 0, break: 0, unsaid: 0 };
}
