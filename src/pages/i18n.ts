/**
 * The words on Leeway's pages, in English and French, and the choice between them from
 * Accept-Language (RFC 9110 §12.5.4). Every string lives in this one table; templates never
 * hold text of their own. Values are plain text: the templates escape them.
 */

export type Lang = 'en' | 'fr';

export const LANGS: readonly Lang[] = ['en', 'fr'];

/**
 * The supported language the client prefers most, by q-value; ties go to the earlier entry;
 * `q=0` means "not this one". Only the primary subtag counts (`fr-CH` is `fr`). Default en.
 */
export function pickLanguage(acceptLanguage?: string): Lang {
  if (acceptLanguage === undefined) return 'en';
  let best: Lang = 'en';
  let bestQ = 0;
  const refused = new Set<Lang>();
  let wildcardQ: number | undefined;
  for (const part of acceptLanguage.split(',').slice(0, 32)) {
    const [rawTag = '', ...params] = part.split(';');
    const tag = rawTag.trim().toLowerCase();
    if (tag === '') continue;
    let q = 1;
    for (const param of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(param);
      if (m?.[1] !== undefined) q = Math.min(1, Number(m[1]));
    }
    if (tag === '*') {
      wildcardQ = q;
      continue;
    }
    const primary = tag.split('-')[0];
    const lang = LANGS.find((l) => l === primary);
    if (lang === undefined) continue;
    if (q === 0) refused.add(lang);
    else if (q > bestQ) [best, bestQ] = [lang, q];
  }
  if (bestQ > 0) return best;
  // Only a wildcard (or nothing we speak): English unless English itself was refused.
  if (wildcardQ !== undefined && wildcardQ > 0 && refused.has('en') && !refused.has('fr')) return 'fr';
  return 'en';
}

export interface Strings {
  readonly privacyLink: string;
  readonly policyHeading: string;
  readonly siteLine: (host: string) => string;
  readonly categoryLine: (category: string) => string;
  readonly coachTitle: string;
  readonly coachIntro: (host: string) => string;
  readonly quotaHeading: string;
  readonly quotaLine: (used: number, perDay: number) => string;
  readonly quotaLeft: (left: number) => string;
  readonly purposeLegend: string;
  readonly purposeBusiness: string;
  readonly purposeBreak: string;
  readonly purposeUnsaid: string;
  readonly continueButton: (host: string) => string;
  readonly suggestTitle: (alternative: string) => string;
  readonly suggestIntro: (host: string, alternative: string) => string;
  readonly alternativeButton: (alternative: string) => string;
  readonly blockTitle: string;
  readonly blockIntro: (host: string) => string;
  readonly reasonHeading: string;
  readonly readonlyTitle: string;
  readonly readonlyIntro: (host: string, method: string) => string;
  readonly errorCode: (code: string) => string;
  readonly errorHost: (host: string) => string;
  readonly privacyTitle: string;
}

const en: Strings = {
  privacyLink: 'What Leeway measures and what it never records',
  policyHeading: 'Company policy',
  siteLine: (host) => `Site: ${host}`,
  categoryLine: (category) => `Category: ${category}`,
  coachTitle: 'A moment before you continue',
  coachIntro: (host) => `You are about to open ${host}. You are welcome to continue; the company asks you to keep the policy below in mind.`,
  quotaHeading: 'Your time today',
  quotaLine: (used, perDay) => `You have used ${used} of your ${perDay} minutes today.`,
  quotaLeft: (left) => (left === 1 ? '1 minute left.' : `${left} minutes left.`),
  purposeLegend: 'What is this visit for? (optional, counted anonymously)',
  purposeBusiness: 'Business networking',
  purposeBreak: 'A break',
  purposeUnsaid: 'Rather not say',
  continueButton: (host) => `Continue to ${host}`,
  suggestTitle: (alternative) => `${alternative} may suit this better`,
  suggestIntro: (host, alternative) => `You are about to open ${host}. For company matters, ${alternative} keeps information inside the company. You are still free to continue.`,
  alternativeButton: (alternative) => `Open ${alternative}`,
  blockTitle: 'This site is blocked',
  blockIntro: (host) => `The company policy does not allow ${host}.`,
  reasonHeading: 'Why',
  readonlyTitle: 'This site is read-only here',
  readonlyIntro: (host, method) => `You can read ${host}, but sending information to it (${method}) is not allowed by the company policy.`,
  errorCode: (code) => `Error code: ${code}`,
  errorHost: (host) => `Site: ${host}`,
  privacyTitle: 'What Leeway measures, and what it never records',
};

const fr: Strings = {
  privacyLink: 'Ce que Leeway mesure et ce qu’il n’enregistre jamais',
  policyHeading: 'Politique de l’entreprise',
  siteLine: (host) => `Site : ${host}`,
  categoryLine: (category) => `Catégorie : ${category}`,
  coachTitle: 'Un instant avant de continuer',
  coachIntro: (host) => `Vous allez ouvrir ${host}. Vous pouvez continuer ; l’entreprise vous demande simplement de garder à l’esprit la politique ci-dessous.`,
  quotaHeading: 'Votre temps aujourd’hui',
  quotaLine: (used, perDay) => `Vous avez utilisé ${used} de vos ${perDay} minutes aujourd’hui.`,
  quotaLeft: (left) => (left <= 1 ? `${left} minute restante.` : `${left} minutes restantes.`),
  purposeLegend: 'Quel est le but de cette visite ? (facultatif, compté anonymement)',
  purposeBusiness: 'Réseautage professionnel',
  purposeBreak: 'Une pause',
  purposeUnsaid: 'Je préfère ne pas le dire',
  continueButton: (host) => `Continuer vers ${host}`,
  suggestTitle: (alternative) => `${alternative} conviendrait peut-être mieux`,
  suggestIntro: (host, alternative) => `Vous allez ouvrir ${host}. Pour les sujets de l’entreprise, ${alternative} garde les informations en interne. Vous restez libre de continuer.`,
  alternativeButton: (alternative) => `Ouvrir ${alternative}`,
  blockTitle: 'Ce site est bloqué',
  blockIntro: (host) => `La politique de l’entreprise n’autorise pas ${host}.`,
  reasonHeading: 'Pourquoi',
  readonlyTitle: 'Ce site est en lecture seule ici',
  readonlyIntro: (host, method) => `Vous pouvez consulter ${host}, mais la politique de l’entreprise ne permet pas de lui envoyer des informations (${method}).`,
  errorCode: (code) => `Code d’erreur : ${code}`,
  errorHost: (host) => `Site : ${host}`,
  privacyTitle: 'Ce que Leeway mesure, et ce qu’il n’enregistre jamais',
};

export const STRINGS: Readonly<Record<Lang, Strings>> = { en, fr };
