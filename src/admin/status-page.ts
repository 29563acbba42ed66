/**
 * The admin listener's `/` page (issue 6, item 3): today's headline figures for sites without
 * Grafana, from the in-memory aggregates. Plain HTML and one inline stylesheet, no script and no
 * external asset, reloading itself every 30 s.
 *
 * Privacy: the page shows only site-wide aggregates, never a group and never a person. While
 * fewer than k people (anonymity.minGroupSize) have browsed today every usage figure is withheld,
 * since with one or two people "the site" is those people.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TodaySummary } from '../accounting/usage-ledger.js';
import { escapeHtml } from '../pages/html.js';
import { pickLanguage } from '../pages/i18n.js';
import type { Lang } from '../pages/i18n.js';

export const STATUS_REFRESH_SECONDS = 30;

/** Today's figures as the UsageLedger reports them (`ledger.todaySummary(now)` fits as is). */
export type StatusToday = Pick<
  TodaySummary,
  | 'day'
  | 'since'
  | 'activePeople'
  | 'browsingPersonMinutes'
  | 'leisurePersonMinutes'
  | 'businessPersonMinutes'
  | 'pages'
  | 'purposeAnswers'
  | 'quotaExhaustions'
>;

export interface StatusPolicy {
  readonly hash: string;
  readonly files: readonly string[];
  /** Epoch ms. */
  readonly loadedAt: number;
}

export interface StatusPageData {
  /** Epoch ms at which the figures were read. */
  readonly now: number;
  /** IANA zone of the policy's day, used for every time shown. */
  readonly timeZone: string;
  /** The k-anonymity threshold (settings.anonymity.minGroupSize). */
  readonly minGroupSize: number;
  readonly uptimeSeconds: number;
  readonly version?: string;
  /** Undefined until a policy has loaded. */
  readonly policy: StatusPolicy | undefined;
  readonly today: StatusToday;
}

/** The figures the page derives, exported so tests (and the e2e check against /metrics) share one definition. */
export interface StatusHeadline {
  /** False while fewer than k people have browsed today: every usage figure is then withheld. */
  readonly shown: boolean;
  /** Leisure person-minutes / browsing person-minutes (0..1), undefined with no browsing. */
  readonly leisureShare: number | undefined;
  readonly businessShare: number | undefined;
  /** Person-minutes per person who browsed today. */
  readonly leisureMinutesPerActivePerson: number;
  readonly businessMinutesPerActivePerson: number;
}

export function statusHeadline(data: StatusPageData): StatusHeadline {
  const t = data.today;
  const people = t.activePeople;
  const ratio = (part: number): number | undefined => (t.browsingPersonMinutes > 0 ? part / t.browsingPersonMinutes : undefined);
  return {
    shown: people >= Math.max(1, data.minGroupSize),
    leisureShare: ratio(t.leisurePersonMinutes),
    businessShare: ratio(t.businessPersonMinutes),
    leisureMinutesPerActivePerson: people > 0 ? t.leisurePersonMinutes / people : 0,
    businessMinutesPerActivePerson: people > 0 ? t.businessPersonMinutes / people : 0,
  };
}

interface Words {
  readonly title: string;
  readonly today: (day: string, since: string) => string;
  readonly refreshed: (seconds: number, at: string) => string;
  readonly headline: string;
  readonly leisureShare: string;
  readonly businessShare: string;
  readonly leisurePerPerson: string;
  readonly businessPerPerson: string;
  readonly activePeople: string;
  readonly browsingMinutes: string;
  readonly noBrowsing: string;
  readonly withheld: (k: number) => string;
  readonly minutes: (n: string) => string;
  readonly pagesHeading: string;
  readonly page: string;
  readonly shown: string;
  readonly continued: string;
  readonly alternative: string;
  readonly pageNames: Readonly<Record<string, string>>;
  readonly purposeHeading: string;
  readonly purposeNames: Readonly<Record<string, string>>;
  readonly quotas: string;
  readonly policyHeading: string;
  readonly noPolicy: string;
  readonly hash: string;
  readonly files: string;
  readonly loadedAt: string;
  readonly proxyHeading: string;
  readonly uptime: string;
  readonly version: string;
  readonly privacy: (k: number) => string;
  readonly metricsLink: string;
}

const WORDS: Readonly<Record<Lang, Words>> = {
  en: {
    title: 'Leeway status',
    today: (day, since) => `Today, ${day} (counted since ${since})`,
    refreshed: (s, at) => `This page refreshes every ${s} seconds. Figures read at ${at}.`,
    headline: 'Today at a glance',
    leisureShare: 'Leisure share of browsing time',
    businessShare: 'Business networking share of browsing time',
    leisurePerPerson: 'Leisure minutes per active person',
    businessPerPerson: 'Business networking minutes per active person',
    activePeople: 'People who browsed today',
    browsingMinutes: 'Browsing person-minutes',
    noBrowsing: 'No browsing yet',
    withheld: (k) =>
      `Fewer than ${k} people have browsed today. Usage figures appear once at least ${k} have, so that nobody can be singled out.`,
    minutes: (n) => `${n} min`,
    pagesHeading: 'Pages shown today and what people did next',
    page: 'Page',
    shown: 'Shown',
    continued: 'Continued',
    alternative: 'Took the internal alternative',
    pageNames: { coach: 'Coach', suggest: 'Suggest', block: 'Block', readonly: 'Read-only' },
    purposeHeading: 'Answers to “What is this visit for?”',
    purposeNames: { business: 'Business networking', break: 'A break', unsaid: 'Rather not say' },
    quotas: 'Daily quotas used up',
    policyHeading: 'Policy',
    noPolicy: 'No policy loaded yet.',
    hash: 'Hash',
    files: 'Files',
    loadedAt: 'Loaded at',
    proxyHeading: 'Proxy',
    uptime: 'Uptime',
    version: 'Version',
    privacy: (k) =>
      `Site-wide aggregates only. No name, address, pseudonym, URL path or query is recorded here or in the metrics; groups under ${k} people are never shown apart.`,
    metricsLink: 'Prometheus metrics',
  },
  fr: {
    title: 'État de Leeway',
    today: (day, since) => `Aujourd’hui, ${day} (compté depuis ${since})`,
    refreshed: (s, at) => `Cette page se met à jour toutes les ${s} secondes. Chiffres lus à ${at}.`,
    headline: 'La journée en un coup d’œil',
    leisureShare: 'Part du temps de navigation consacrée aux loisirs',
    businessShare: 'Part du temps de navigation consacrée au réseautage professionnel',
    leisurePerPerson: 'Minutes de loisirs par personne active',
    businessPerPerson: 'Minutes de réseautage professionnel par personne active',
    activePeople: 'Personnes ayant navigué aujourd’hui',
    browsingMinutes: 'Minutes-personnes de navigation',
    noBrowsing: 'Aucune navigation pour l’instant',
    withheld: (k) =>
      `Moins de ${k} personnes ont navigué aujourd’hui. Les chiffres d’usage s’affichent dès qu’elles sont au moins ${k}, pour que personne ne puisse être isolé.`,
    minutes: (n) => `${n} min`,
    pagesHeading: 'Pages affichées aujourd’hui et suite donnée',
    page: 'Page',
    shown: 'Affichées',
    continued: 'Poursuivies',
    alternative: 'Outil interne choisi',
    pageNames: { coach: 'Conseil', suggest: 'Suggestion', block: 'Blocage', readonly: 'Lecture seule' },
    purposeHeading: 'Réponses à « Quel est le but de cette visite ? »',
    purposeNames: { business: 'Réseautage professionnel', break: 'Une pause', unsaid: 'Je préfère ne pas répondre' },
    quotas: 'Quotas journaliers épuisés',
    policyHeading: 'Politique',
    noPolicy: 'Aucune politique chargée pour l’instant.',
    hash: 'Empreinte',
    files: 'Fichiers',
    loadedAt: 'Chargée le',
    proxyHeading: 'Proxy',
    uptime: 'En service depuis',
    version: 'Version',
    privacy: (k) =>
      `Agrégats globaux uniquement. Aucun nom, adresse, pseudonyme, chemin ou paramètre d’URL n’est enregistré ici ni dans les métriques ; les groupes de moins de ${k} personnes ne sont jamais montrés à part.`,
    metricsLink: 'Métriques Prometheus',
  },
};

// Colours as on the other Leeway pages (WCAG AA checked there); green/orange marks follow the
// dashboard's thresholds for the leisure share.
const STYLE = `
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#1b1b1b;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:60rem;margin:1.5rem auto;padding:0 1.25rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
h2{font-size:1.1rem;margin:1.75rem 0 .5rem}
.meta{color:#4a4a4a;font-size:.95rem;margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:.75rem;margin:.5rem 0}
.card{background:#fff;border:1px solid #d0d4da;border-radius:6px;padding:.75rem 1rem}
.card .label{font-size:.9rem;color:#4a4a4a}
.card .value{font-size:1.9rem;font-weight:650;line-height:1.2;margin-top:.25rem}
.ok .value{color:#1e6b34}.warn .value{color:#8a4b00}.bad .value{color:#a4161a}
.notice{background:#fff;border-left:4px solid #0b5394;padding:.75rem 1rem}
table{border-collapse:collapse;background:#fff;min-width:24rem}
th,td{border:1px solid #d0d4da;padding:.35rem .75rem;text-align:right}
th:first-child,td:first-child{text-align:left}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;background:#fff;border:1px solid #d0d4da;border-radius:6px;padding:.75rem 1rem;margin:0}
dt{color:#4a4a4a}dd{margin:0;overflow-wrap:anywhere}
code{font-family:ui-monospace,monospace;font-size:.9rem}
footer{margin:2rem 0 1rem;padding-top:1rem;border-top:1px solid #d0d4da;font-size:.9rem;color:#4a4a4a}
a{color:#0b5394}
`;

/** Same cut-offs as the dashboard's leisure-share thresholds (grafana/src/acceptable-use.ts). */
function shareClass(share: number | undefined): string {
  if (share === undefined || share < 0.25) return 'ok';
  return share < 0.4 ? 'warn' : 'bad';
}

function card(figure: string, label: string, text: string, raw: number | undefined, extraClass = ''): string {
  const value = raw === undefined ? '' : ` data-value="${escapeHtml(String(raw))}"`;
  return `<div class="card ${extraClass}" data-figure="${figure}"${value}><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(text)}</div></div>`;
}

function formatDuration(totalSeconds: number, lang: Lang): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d > 0 ? `${d} ${lang === 'fr' ? 'j' : 'd'}` : '', d > 0 || h > 0 ? `${h} h` : '', `${m} min`, d === 0 && h === 0 ? `${s % 60} s` : ''];
  return parts.filter((p) => p !== '').join(' ');
}

export function renderStatusPage(data: StatusPageData, lang: Lang = 'en'): string {
  const w = WORDS[lang];
  const number = (n: number, digits: number): string =>
    new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
  const percent = (n: number | undefined): string =>
    n === undefined ? w.noBrowsing : new Intl.NumberFormat(lang, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(n);
  const time = (ms: number): string =>
    new Intl.DateTimeFormat(lang, { timeZone: data.timeZone, dateStyle: 'medium', timeStyle: 'medium' }).format(new Date(ms));
  const k = data.minGroupSize;
  const t = data.today;
  const h = statusHeadline(data);

  let usage: string;
  if (!h.shown) {
    usage = `<p class="notice" data-figure="withheld">${escapeHtml(w.withheld(k))}</p>`;
  } else {
    const pageRows = Object.entries(t.pages)
      .map(
        ([page, o]) =>
          `<tr data-page="${escapeHtml(page)}"><td>${escapeHtml(w.pageNames[page] ?? page)}</td><td data-outcome="shown">${o.shown}</td><td data-outcome="continued">${o.continued}</td><td data-outcome="alternative">${o.alternative}</td></tr>`,
      )
      .join('');
    const purposeRows = Object.entries(t.purposeAnswers)
      .map(([purpose, n]) => `<tr data-purpose="${escapeHtml(purpose)}"><td>${escapeHtml(w.purposeNames[purpose] ?? purpose)}</td><td>${n}</td></tr>`)
      .join('');
    usage = `<div class="cards">
${card('leisure-share', w.leisureShare, percent(h.leisureShare), h.leisureShare, shareClass(h.leisureShare))}
${card('business-share', w.businessShare, percent(h.businessShare), h.businessShare)}
${card('leisure-minutes-per-person', w.leisurePerPerson, w.minutes(number(h.leisureMinutesPerActivePerson, 1)), h.leisureMinutesPerActivePerson)}
${card('business-minutes-per-person', w.businessPerPerson, w.minutes(number(h.businessMinutesPerActivePerson, 1)), h.businessMinutesPerActivePerson)}
${card('active-people', w.activePeople, number(t.activePeople, 0), t.activePeople)}
${card('browsing-minutes', w.browsingMinutes, number(t.browsingPersonMinutes, 0), t.browsingPersonMinutes)}
${card('quota-exhaustions', w.quotas, number(t.quotaExhaustions, 0), t.quotaExhaustions)}
</div>
<h2>${escapeHtml(w.pagesHeading)}</h2>
<table data-figure="pages"><thead><tr><th>${escapeHtml(w.page)}</th><th>${escapeHtml(w.shown)}</th><th>${escapeHtml(w.continued)}</th><th>${escapeHtml(w.alternative)}</th></tr></thead><tbody>${pageRows}</tbody></table>
<h2>${escapeHtml(w.purposeHeading)}</h2>
<table data-figure="purposes"><tbody>${purposeRows}</tbody></table>`;
  }

  const policy =
    data.policy === undefined
      ? `<p class="notice" data-figure="no-policy">${escapeHtml(w.noPolicy)}</p>`
      : `<dl data-figure="policy">
<dt>${escapeHtml(w.hash)}</dt><dd><code data-field="hash">${escapeHtml(data.policy.hash)}</code></dd>
<dt>${escapeHtml(w.files)}</dt><dd>${data.policy.files.map((f) => `<code>${escapeHtml(f)}</code>`).join('<br>')}</dd>
<dt>${escapeHtml(w.loadedAt)}</dt><dd>${escapeHtml(time(data.policy.loadedAt))}</dd>
</dl>`;

  const version = data.version === undefined ? '' : `<dt>${escapeHtml(w.version)}</dt><dd>${escapeHtml(data.version)}</dd>`;

  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="${STATUS_REFRESH_SECONDS}">
<meta name="robots" content="noindex">
<title>${escapeHtml(w.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(w.title)}</h1>
<p class="meta">${escapeHtml(w.today(t.day, time(t.since)))}</p>
<p class="meta">${escapeHtml(w.refreshed(STATUS_REFRESH_SECONDS, time(data.now)))}</p>
<h2>${escapeHtml(w.headline)}</h2>
${usage}
<h2>${escapeHtml(w.policyHeading)}</h2>
${policy}
<h2>${escapeHtml(w.proxyHeading)}</h2>
<dl data-figure="proxy"><dt>${escapeHtml(w.uptime)}</dt><dd data-field="uptime" data-value="${Math.floor(data.uptimeSeconds)}">${escapeHtml(formatDuration(data.uptimeSeconds, lang))}</dd>${version}</dl>
<footer><p>${escapeHtml(w.privacy(k))}</p><p><a href="metrics">${escapeHtml(w.metricsLink)}</a></p></footer>
</main>
</body>
</html>
`;
}

/**
 * The admin route for `/`: reads the figures at request time and answers in the language the
 * browser prefers. No caching: the page is only as good as its freshness.
 */
export function statusPageHandler(source: () => StatusPageData): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const body = renderStatusPage(source(), pickLanguage(req.headers['accept-language']));
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // Only the inline stylesheet may load: the page has no script, image or font.
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
