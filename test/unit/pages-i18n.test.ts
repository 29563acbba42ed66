import { describe, expect, it } from 'vitest';
import { LANGS, STRINGS, pickLanguage, type Lang } from '../../src/pages/i18n.js';

describe('pickLanguage', () => {
  const cases: [string | undefined, Lang][] = [
    [undefined, 'en'],
    ['', 'en'],
    ['fr', 'fr'],
    ['FR', 'fr'],
    ['fr-FR', 'fr'],
    ['fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5', 'fr'],
    ['en-US,en;q=0.9,fr;q=0.8', 'en'],
    ['de-DE, fr;q=0.5', 'fr'],
    ['de-DE, en;q=0.4, fr;q=0.5', 'fr'],
    ['en;q=0.5, fr;q=0.5', 'en'],
    ['fr;q=0.5, en;q=0.5', 'fr'],
    ['de, es', 'en'],
    ['fr;q=0', 'en'],
    ['fr;q=0, en;q=0.1', 'en'],
    ['en;q=0, *', 'fr'],
    ['*', 'en'],
    ['fr;q=1.0', 'fr'],
    ['fr;q=abc, en;q=0.5', 'fr'],
    ['  fr ; q = 0.8 , en ; q = 0.7 ', 'fr'],
    ['frx, en;q=0.1', 'en'],
    [',,,;;;', 'en'],
  ];
  it.each(cases)('%j → %s', (header, expected) => {
    expect(pickLanguage(header)).toBe(expected);
  });
});

describe('STRINGS', () => {
  it('has every key in every language, none empty, and really translated', () => {
    const keys = Object.keys(STRINGS.en).sort();
    for (const lang of LANGS) {
      expect(Object.keys(STRINGS[lang]).sort()).toEqual(keys);
      for (const key of keys) {
        const v = (STRINGS[lang] as unknown as Record<string, unknown>)[key];
        const text = typeof v === 'function' ? String((v as (...a: unknown[]) => unknown)('X', 'Y')) : String(v);
        expect(text.trim().length, `${lang}.${key}`).toBeGreaterThan(0);
      }
    }
    expect(STRINGS.fr.coachTitle).not.toBe(STRINGS.en.coachTitle);
    expect(STRINGS.fr.purposeBreak).toBe('Une pause');
  });
});
