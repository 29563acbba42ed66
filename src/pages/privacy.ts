/**
 * /.leeway/privacy (issue 3 item 8; PRODUCT.md privacy rules): what the policy in force measures
 * and what Leeway never records, in plain words, built from the live CompiledPolicy so the page
 * cannot drift from what the proxy actually does.
 */
import type { CompiledPolicy } from '../policy/types.js';
import type { Lang } from './i18n.js';
import { STRINGS } from './i18n.js';
import { escapeHtml, page } from './html.js';

export function renderPrivacyPage(policy: CompiledPolicy, lang: Lang): string {
  const s = STRINGS[lang];
  const p = s.privacy;
  const { settings } = policy;
  const tz = settings.timeZone;
  const li = (text: string): string => `<li>${escapeHtml(text)}</li>`;
  const doNotInspect = settings.interception.doNotInspect;
  const sections = [
    `<p>${escapeHtml(p.intro)}</p>`,
    `<h2>${escapeHtml(p.measuredHeading)}</h2>`,
    `<ul>`,
    li(p.measuredMinutes),
    li(p.measuredGroups(settings.anonymity.minGroupSize)),
    li(p.measuredPages),
    `</ul>`,
    `<h2>${escapeHtml(p.neverHeading)}</h2>`,
    `<ul>`,
    li(p.neverNames),
    li(p.neverAddresses),
    li(p.neverUrls),
    `</ul>`,
    `<p>${escapeHtml(p.pseudonyms(tz))}</p>`,
    `<h2>${escapeHtml(p.inspectionHeading)}</h2>`,
    `<p>${escapeHtml(settings.interception.enabled ? p.inspectionOn : p.inspectionOff)}</p>`,
    `<p>${escapeHtml(doNotInspect.length > 0 ? p.doNotInspect(doNotInspect.join(', ')) : p.doNotInspectNone)}</p>`,
    `<h2>${escapeHtml(p.accessLogHeading)}</h2>`,
    `<p>${escapeHtml(p.accessLog[settings.accessLog])}</p>`,
    `<h2>${escapeHtml(p.keptHeading)}</h2>`,
    `<ul>`,
    li(p.keptToday(tz)),
    li(p.keptPrometheus),
    `</ul>`,
  ];
  if (policy.ruleSummaries.length > 0) {
    sections.push(`<h2>${escapeHtml(p.rulesHeading)}</h2>`, `<p>${escapeHtml(p.rulesIntro)}</p>`, `<ol>`);
    for (const rule of policy.ruleSummaries) {
      sections.push(`<li>${escapeHtml(rule.description)} <span class="meta">(${escapeHtml(p.action[rule.action])})</span></li>`);
    }
    sections.push(`</ol>`);
  }
  return page(lang, s.privacyTitle, sections.join('\n'));
}
