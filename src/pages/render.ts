/**
 * Leeway's pages (issue 3 item 8): coach, suggest, block, read-only and error. Each is a pure
 * function (data, lang) → HTML string; every value from the policy, the request or the caller is
 * escaped; every page shows the rule's description and links the privacy page.
 *
 * The Continue form (coach and suggest) posts `application/x-www-form-urlencoded` to
 * `continueAction` with the fields of {@link ContinueForm} (parse it with `parseContinueForm`):
 * - `token`: the signed continue token;
 * - `choice`: `continue`, or `alternative` on a suggest page. The alternative is a submit button
 *   in the same form rather than a direct link so that the proxy can count the uptake; it then
 *   redirects to the alternative URL carried, signed, in the token (`alternativeUrl` claim), so
 *   the redirect target cannot be chosen by whoever posts the form;
 * - `purpose` (only when the page asks): `business`, `break` or `unsaid`.
 */
import type { Lang } from './i18n.js';
import { STRINGS } from './i18n.js';
import { escapeHtml, page } from './html.js';

export interface QuotaView {
  readonly minutesUsed: number;
  readonly minutesLeft: number;
  readonly minutesPerDay: number;
}

export interface CoachPageData {
  /** The rule's description, shown as the company policy. */
  readonly description: string;
  readonly site?: string;
  readonly category?: string;
  readonly host: string;
  /** URL (usually the path /.leeway/continue) the Continue form posts to. */
  readonly continueAction: string;
  readonly token: string;
  readonly purposeQuestion: boolean;
  readonly quota?: QuotaView;
}

export interface SuggestPageData extends CoachPageData {
  readonly alternative: { readonly name: string; readonly url: string };
}

export interface BlockPageData {
  readonly description: string;
  readonly reason: string;
  readonly host: string;
  readonly site?: string;
  readonly category?: string;
}

export interface ReadonlyPageData {
  readonly description: string;
  readonly host: string;
  readonly method: string;
}

export interface ErrorPageData {
  /** A LEEWAY_ERR_* code. */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly host?: string;
}

export function renderCoachPage(data: CoachPageData, lang: Lang): string {
  const s = STRINGS[lang];
  const body = [
    `<p>${escapeHtml(s.coachIntro(data.host))}</p>`,
    policyBlock(data, lang),
    quotaBlock(data.quota, lang),
    continueForm(data, lang, undefined),
  ].join('\n');
  return page(lang, s.coachTitle, body);
}

export function renderSuggestPage(data: SuggestPageData, lang: Lang): string {
  const s = STRINGS[lang];
  const body = [
    `<p>${escapeHtml(s.suggestIntro(data.host, data.alternative.name))}</p>`,
    policyBlock(data, lang),
    quotaBlock(data.quota, lang),
    continueForm(data, lang, data.alternative.name),
  ].join('\n');
  return page(lang, s.suggestTitle(data.alternative.name), body);
}

export function renderBlockPage(data: BlockPageData, lang: Lang): string {
  const s = STRINGS[lang];
  const body = [
    `<p>${escapeHtml(s.blockIntro(data.host))}</p>`,
    `<h2>${escapeHtml(s.reasonHeading)}</h2>`,
    `<p>${escapeHtml(data.reason)}</p>`,
    policyBlock(data, lang),
  ].join('\n');
  return page(lang, s.blockTitle, body);
}

export function renderReadonlyPage(data: ReadonlyPageData, lang: Lang): string {
  const s = STRINGS[lang];
  const body = [`<p>${escapeHtml(s.readonlyIntro(data.host, data.method))}</p>`, policyBlock(data, lang)].join('\n');
  return page(lang, s.readonlyTitle, body);
}

export function renderErrorPage(data: ErrorPageData, lang: Lang): string {
  const s = STRINGS[lang];
  const lines = [`<p>${escapeHtml(data.detail)}</p>`];
  if (data.host !== undefined) lines.push(`<p class="meta">${escapeHtml(s.errorHost(data.host))}</p>`);
  lines.push(`<p class="meta">${escapeHtml(s.errorCode(data.code))}</p>`);
  return page(lang, data.title, lines.join('\n'));
}

function policyBlock(data: { description: string; site?: string; category?: string }, lang: Lang): string {
  const s = STRINGS[lang];
  const meta: string[] = [];
  if (data.site !== undefined) meta.push(escapeHtml(s.siteLine(data.site)));
  if (data.category !== undefined) meta.push(escapeHtml(s.categoryLine(data.category)));
  return [
    `<section class="policy" aria-labelledby="policy-heading">`,
    `<h2 id="policy-heading">${escapeHtml(s.policyHeading)}</h2>`,
    `<p>${escapeHtml(data.description)}</p>`,
    meta.length > 0 ? `<p class="meta">${meta.join('<br>')}</p>` : '',
    `</section>`,
  ]
    .filter((l) => l !== '')
    .join('\n');
}

function quotaBlock(quota: QuotaView | undefined, lang: Lang): string {
  if (quota === undefined) return '';
  const s = STRINGS[lang];
  const used = Math.max(0, Math.round(quota.minutesUsed));
  const perDay = Math.max(0, Math.round(quota.minutesPerDay));
  const left = Math.max(0, Math.round(quota.minutesLeft));
  return [
    `<h2>${escapeHtml(s.quotaHeading)}</h2>`,
    `<p>${escapeHtml(s.quotaLine(used, perDay))} ${escapeHtml(s.quotaLeft(left))}</p>`,
    // A native meter is read out by screen readers with its label; the text above says the same.
    `<p><meter min="0" max="${perDay}" value="${Math.min(used, perDay)}" aria-label="${escapeHtml(s.quotaLine(used, perDay))}">${used}/${perDay}</meter></p>`,
  ].join('\n');
}

/** The alternative (when given) comes first in the DOM, so it is both the main button and first in focus order. */
function continueForm(data: CoachPageData, lang: Lang, alternativeName: string | undefined): string {
  const s = STRINGS[lang];
  const lines = [
    `<form method="post" action="${escapeHtml(data.continueAction)}">`,
    `<input type="hidden" name="token" value="${escapeHtml(data.token)}">`,
  ];
  if (data.purposeQuestion) {
    const options: [string, string][] = [
      ['business', s.purposeBusiness],
      ['break', s.purposeBreak],
      ['unsaid', s.purposeUnsaid],
    ];
    lines.push(`<fieldset>`, `<legend>${escapeHtml(s.purposeLegend)}</legend>`);
    for (const [value, label] of options) {
      const checked = value === 'unsaid' ? ' checked' : '';
      lines.push(`<label for="purpose-${value}"><input type="radio" id="purpose-${value}" name="purpose" value="${value}"${checked}>${escapeHtml(label)}</label>`);
    }
    lines.push(`</fieldset>`);
  }
  lines.push(`<div class="actions">`);
  if (alternativeName !== undefined) {
    lines.push(`<button type="submit" name="choice" value="alternative" class="button primary">${escapeHtml(s.alternativeButton(alternativeName))}</button>`);
    lines.push(`<button type="submit" name="choice" value="continue" class="button secondary">${escapeHtml(s.continueButton(data.host))}</button>`);
  } else {
    lines.push(`<button type="submit" name="choice" value="continue" class="button primary">${escapeHtml(s.continueButton(data.host))}</button>`);
  }
  lines.push(`</div>`, `</form>`);
  return lines.join('\n');
}
