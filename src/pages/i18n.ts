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
  readonly privacy: PrivacyStrings;
}

/** The privacy page (/.leeway/privacy), in plain words. */
export interface PrivacyStrings {
  readonly intro: string;
  readonly measuredHeading: string;
  readonly measuredMinutes: string;
  readonly measuredGroups: (minGroupSize: number) => string;
  readonly measuredPages: string;
  readonly neverHeading: string;
  readonly neverNames: string;
  readonly neverAddresses: string;
  readonly neverUrls: string;
  readonly pseudonyms: (timeZone: string) => string;
  readonly inspectionHeading: string;
  readonly inspectionOff: string;
  readonly inspectionOn: string;
  readonly doNotInspect: (categories: string) => string;
  readonly doNotInspectNone: string;
  readonly accessLogHeading: string;
  readonly accessLog: Readonly<Record<'aggregate-only' | 'anonymous' | 'pseudonymous', string>>;
  readonly keptHeading: string;
  readonly keptToday: (timeZone: string) => string;
  readonly keptPrometheus: string;
  readonly rulesHeading: string;
  readonly rulesIntro: string;
  readonly action: Readonly<Record<'allow' | 'coach' | 'suggest' | 'quota' | 'readonly' | 'block', string>>;
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
  privacy: {
    intro: 'Leeway is the company’s web proxy. It lets you use social and professional sites, with a few gentle limits, and counts time only in aggregate to show how the web is really used. This page is generated from the policy in force right now.',
    measuredHeading: 'What is measured',
    measuredMinutes: 'Active minutes per site and per category, added up for everyone together.',
    measuredGroups: (k) => `Figures per team are shown only for teams with at least ${k} active people; smaller teams are counted under “other”, so no one can be singled out.`,
    measuredPages: 'How often a coaching page is shown and what people choose next (continue, the internal alternative, and the optional answer “business or a break?”), counted without any identity.',
    neverHeading: 'What is never recorded',
    neverNames: 'Your user name.',
    neverAddresses: 'Your computer’s network address.',
    neverUrls: 'Full web addresses: no page paths and no search or query strings, only the site’s host name.',
    pseudonyms: (tz) => `During one day, your time budget and your “Continue” choices are attached to a pseudonym: a code computed with a secret key that exists only in the proxy’s memory and is replaced every night at midnight (${tz}). Days cannot be linked, and the code cannot be turned back into your name.`,
    inspectionHeading: 'Encrypted (HTTPS) traffic',
    inspectionOff: 'Leeway does not decrypt HTTPS traffic: it sees only the name of the site you connect to.',
    inspectionOn: 'Leeway decrypts HTTPS traffic only where the policy needs to show you a page or to tell reading from posting; the content is not stored.',
    doNotInspect: (list) => `Never decrypted, whatever the rules say: ${list}.`,
    doNotInspectNone: 'No category is excluded from decryption in this policy.',
    accessLogHeading: 'Request log',
    accessLog: {
      'aggregate-only': 'No log of individual requests is written: only the aggregate counters above.',
      anonymous: 'Each request is logged without any identity, path or query: time, category, site, action taken, status, size and duration.',
      pseudonymous: 'Each request is logged with the day’s pseudonym (never your name, address, path or query), by explicit choice of the IT department.',
    },
    keptHeading: 'How long anything is kept',
    keptToday: (tz) => `Today’s per-person counters (time used, “Continue” choices) are kept in memory only and reset at local midnight (${tz}).`,
    keptPrometheus: 'The aggregate figures are stored in the company’s monitoring system (Prometheus); how long they are kept is set by the company.',
    rulesHeading: 'The rules in force',
    rulesIntro: 'In the order they are applied:',
    action: { allow: 'allowed', coach: 'a coaching page first', suggest: 'an internal alternative suggested', quota: 'a daily time budget', readonly: 'read-only', block: 'blocked' },
  },
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
  privacy: {
    intro: 'Leeway est le proxy web de l’entreprise. Il vous laisse utiliser les sites sociaux et professionnels, avec quelques limites légères, et ne compte le temps qu’en agrégé pour montrer l’usage réel du web. Cette page est générée à partir de la politique en vigueur en ce moment.',
    measuredHeading: 'Ce qui est mesuré',
    measuredMinutes: 'Les minutes actives par site et par catégorie, additionnées pour tout le monde.',
    measuredGroups: (k) => `Les chiffres par équipe ne sont montrés que pour les équipes d’au moins ${k} personnes actives ; les plus petites sont comptées dans « autre », pour que personne ne puisse être isolé.`,
    measuredPages: 'Combien de fois une page d’accompagnement est affichée et ce que l’on choisit ensuite (continuer, l’outil interne, et la réponse facultative « réseautage ou pause ? »), comptés sans aucune identité.',
    neverHeading: 'Ce qui n’est jamais enregistré',
    neverNames: 'Votre nom d’utilisateur.',
    neverAddresses: 'L’adresse réseau de votre ordinateur.',
    neverUrls: 'Les adresses web complètes : ni chemin de page ni paramètres de recherche, seulement le nom du site.',
    pseudonyms: (tz) => `Pendant une journée, votre budget de temps et vos choix « Continuer » sont rattachés à un pseudonyme : un code calculé avec une clé secrète qui n’existe que dans la mémoire du proxy et qui est remplacée chaque nuit à minuit (${tz}). Les jours ne peuvent pas être reliés entre eux, et le code ne permet pas de retrouver votre nom.`,
    inspectionHeading: 'Trafic chiffré (HTTPS)',
    inspectionOff: 'Leeway ne déchiffre pas le trafic HTTPS : il ne voit que le nom du site auquel vous vous connectez.',
    inspectionOn: 'Leeway ne déchiffre le trafic HTTPS que lorsque la politique doit vous afficher une page ou distinguer la lecture de la publication ; le contenu n’est pas conservé.',
    doNotInspect: (list) => `Jamais déchiffré, quelles que soient les règles : ${list}.`,
    doNotInspectNone: 'Aucune catégorie n’est exclue du déchiffrement dans cette politique.',
    accessLogHeading: 'Journal des requêtes',
    accessLog: {
      'aggregate-only': 'Aucun journal des requêtes individuelles n’est écrit : seulement les compteurs agrégés ci-dessus.',
      anonymous: 'Chaque requête est journalisée sans identité, chemin ni paramètres : heure, catégorie, site, action, statut, taille et durée.',
      pseudonymous: 'Chaque requête est journalisée avec le pseudonyme du jour (jamais votre nom, votre adresse, le chemin ni les paramètres), par choix explicite du service informatique.',
    },
    keptHeading: 'Durée de conservation',
    keptToday: (tz) => `Les compteurs du jour par personne (temps utilisé, choix « Continuer ») sont gardés en mémoire seulement et remis à zéro à minuit, heure locale (${tz}).`,
    keptPrometheus: 'Les chiffres agrégés sont stockés dans le système de supervision de l’entreprise (Prometheus) ; leur durée de conservation est fixée par l’entreprise.',
    rulesHeading: 'Les règles en vigueur',
    rulesIntro: 'Dans l’ordre où elles s’appliquent :',
    action: { allow: 'autorisé', coach: 'une page d’accompagnement d’abord', suggest: 'un outil interne suggéré', quota: 'un budget de temps quotidien', readonly: 'lecture seule', block: 'bloqué' },
  },
};

export const STRINGS: Readonly<Record<Lang, Strings>> = { en, fr };
