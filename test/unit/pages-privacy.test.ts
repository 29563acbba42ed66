import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../../src/policy/load.js';
import type { AccessLogMode, CompiledPolicy, Settings } from '../../src/policy/types.js';
import { LANGS } from '../../src/pages/i18n.js';
import { renderPrivacyPage } from '../../src/pages/privacy.js';
import { escapeHtml } from '../../src/pages/html.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'pages');
let bundled: CompiledPolicy;

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  const result = await loadPolicy(join(process.cwd(), 'policies'));
  if (!result.ok) throw new Error(`bundled policies do not load: ${JSON.stringify(result.errors)}`);
  bundled = result.policy;
});

/** The bundled policy with some settings replaced. */
function variant(over: { accessLog?: AccessLogMode; interception?: Settings['interception']; minGroupSize?: number; timeZone?: string; rules?: CompiledPolicy['ruleSummaries'] }): CompiledPolicy {
  const settings: Settings = {
    ...bundled.settings,
    accessLog: over.accessLog ?? bundled.settings.accessLog,
    interception: over.interception ?? bundled.settings.interception,
    anonymity: { minGroupSize: over.minGroupSize ?? bundled.settings.anonymity.minGroupSize },
    timeZone: over.timeZone ?? bundled.settings.timeZone,
  };
  return Object.assign(Object.create(Object.getPrototypeOf(bundled) as object) as CompiledPolicy, bundled, { settings, ruleSummaries: over.rules ?? bundled.ruleSummaries });
}

describe('renderPrivacyPage', () => {
  it.each(LANGS)('from the bundled policy (%s)', async (lang) => {
    const html = renderPrivacyPage(bundled, lang);
    await writeFile(join(ARTIFACTS, `privacy.${lang}.html`), html);
    expect(html).toContain(`<html lang="${lang}">`);
    expect(html.match(/<h1[\s>]/g)).toHaveLength(1);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script/i);
    const s = bundled.settings;
    expect(html).toContain(` ${s.anonymity.minGroupSize} `);
    expect(html).toContain(s.timeZone);
    for (const c of s.interception.doNotInspect) expect(html).toContain(c);
    for (const rule of bundled.ruleSummaries) expect(html).toContain(escapeHtml(rule.description));
  });

  it.each([
    ['aggregate-only', 'No log of individual requests'],
    ['anonymous', 'without any identity, path or query'],
    ['pseudonymous', 'with the day’s pseudonym'],
  ] as const)('describes access-log mode %s', (mode, phrase) => {
    expect(renderPrivacyPage(variant({ accessLog: mode }), 'en')).toContain(phrase);
  });

  it('follows the live settings: group size, time zone, interception', () => {
    const on = renderPrivacyPage(variant({ minGroupSize: 12, timeZone: 'America/Montreal', interception: { enabled: true, doNotInspect: ['banking', 'medical'] } }), 'en');
    expect(on).toContain('at least 12 active people');
    expect(on).toContain('midnight (America/Montreal)');
    expect(on).toContain('Never decrypted, whatever the rules say: banking, medical.');
    expect(on).toContain('decrypts HTTPS traffic only where');
    const off = renderPrivacyPage(variant({ interception: { enabled: false, doNotInspect: [] } }), 'fr');
    expect(off).toContain('ne déchiffre pas le trafic HTTPS');
    expect(off).toContain('Aucune catégorie');
  });

  it('says what is never recorded, in both languages', () => {
    expect(renderPrivacyPage(bundled, 'en')).toMatch(/user name[\s\S]*network address[\s\S]*no page paths/);
    expect(renderPrivacyPage(bundled, 'fr')).toMatch(/nom d’utilisateur[\s\S]*adresse réseau[\s\S]*ni chemin/);
  });

  it('escapes rule descriptions and lists them in order', () => {
    const html = renderPrivacyPage(variant({ rules: [
      { id: 'a', description: 'First <b>rule</b>', action: 'coach' },
      { id: 'b', description: 'Second & last', action: 'block' },
    ] }), 'en');
    expect(html).toContain('First &lt;b&gt;rule&lt;/b&gt;');
    expect(html).not.toContain('<b>rule');
    expect(html.indexOf('First')).toBeLessThan(html.indexOf('Second &amp; last'));
    expect(html).toContain('(blocked)');
  });
});
