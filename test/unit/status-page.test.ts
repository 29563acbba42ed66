import { describe, expect, it } from 'vitest';
import { renderStatusPage, statusHeadline, STATUS_REFRESH_SECONDS } from '../../src/admin/status-page.js';
import type { StatusPageData, StatusToday } from '../../src/admin/status-page.js';

const NOON = Date.UTC(2026, 10, 26, 11, 0, 0);

function today(overrides: Partial<StatusToday> = {}): StatusToday {
  return {
    day: '2026-11-26',
    since: Date.UTC(2026, 10, 25, 23, 0, 0),
    activePeople: 8,
    browsingPersonMinutes: 400,
    leisurePersonMinutes: 60,
    businessPersonMinutes: 100,
    pages: {
      coach: { shown: 12, continued: 7, alternative: 0 },
      suggest: { shown: 5, continued: 2, alternative: 3 },
      block: { shown: 4, continued: 0, alternative: 0 },
      readonly: { shown: 0, continued: 0, alternative: 0 },
    },
    purposeAnswers: { business: 6, break: 4, unsaid: 2 },
    quotaExhaustions: 1,
    ...overrides,
  };
}

function data(overrides: Partial<StatusPageData> = {}, todayOverrides: Partial<StatusToday> = {}): StatusPageData {
  return {
    now: NOON,
    timeZone: 'Europe/Paris',
    minGroupSize: 5,
    uptimeSeconds: 3 * 3600 + 25 * 60 + 7,
    version: '0.1.0',
    policy: { hash: 'sha256:abc123', files: ['policies/base.yaml', 'policies/social.yaml'], loadedAt: NOON - 60_000 },
    today: today(todayOverrides),
    ...overrides,
  };
}

function figure(html: string, name: string): string | undefined {
  return new RegExp(`data-figure="${name}" data-value="([^"]*)"`).exec(html)?.[1];
}

function textOf(html: string): string {
  return html.replace(/<style>[\s\S]*?<\/style>/, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

describe('statusHeadline', () => {
  it.each([
    { name: 'typical day', t: {}, k: 5, shown: true, leisure: 0.15, business: 0.25, lpp: 7.5, bpp: 12.5 },
    { name: 'exactly k people', t: { activePeople: 5 }, k: 5, shown: true, leisure: 0.15, business: 0.25, lpp: 12, bpp: 20 },
    { name: 'below k', t: { activePeople: 4 }, k: 5, shown: false, leisure: 0.15, business: 0.25, lpp: 15, bpp: 25 },
    {
      name: 'nobody yet',
      t: { activePeople: 0, browsingPersonMinutes: 0, leisurePersonMinutes: 0, businessPersonMinutes: 0 },
      k: 5,
      shown: false,
      leisure: undefined,
      business: undefined,
      lpp: 0,
      bpp: 0,
    },
    { name: 'k of 0 still needs one person', t: { activePeople: 0, browsingPersonMinutes: 0 }, k: 0, shown: false, leisure: undefined, business: undefined, lpp: 0, bpp: 0 },
  ])('$name', ({ t, k, shown, leisure, business, lpp, bpp }) => {
    const h = statusHeadline(data({ minGroupSize: k }, t));
    expect(h.shown).toBe(shown);
    expect(h.leisureShare).toBe(leisure);
    expect(h.businessShare).toBe(business);
    expect(h.leisureMinutesPerActivePerson).toBe(lpp);
    expect(h.businessMinutesPerActivePerson).toBe(bpp);
  });
});

describe('renderStatusPage', () => {
  it('is a self-refreshing HTML page with no script and no external asset', () => {
    const html = renderStatusPage(data());
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`<meta http-equiv="refresh" content="${STATUS_REFRESH_SECONDS}">`);
    expect(STATUS_REFRESH_SECONDS).toBe(30);
    expect(html).not.toMatch(/<script|<img|<link|src=|url\(|@import/i);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('shows the headline figures with machine-readable values', () => {
    const html = renderStatusPage(data());
    expect(figure(html, 'leisure-share')).toBe('0.15');
    expect(figure(html, 'business-share')).toBe('0.25');
    expect(figure(html, 'leisure-minutes-per-person')).toBe('7.5');
    expect(figure(html, 'business-minutes-per-person')).toBe('12.5');
    expect(figure(html, 'active-people')).toBe('8');
    expect(figure(html, 'browsing-minutes')).toBe('400');
    expect(figure(html, 'quota-exhaustions')).toBe('1');
    const text = textOf(html);
    expect(text).toContain('15.0%');
    expect(text).toContain('7.5 min');
    expect(text).toContain('Leisure share of browsing time');
  });

  it('lists pages with their outcomes and the purpose answers', () => {
    const html = renderStatusPage(data());
    expect(html).toContain('<tr data-page="suggest"><td>Suggest</td><td data-outcome="shown">5</td><td data-outcome="continued">2</td><td data-outcome="alternative">3</td></tr>');
    expect(html).toContain('<tr data-purpose="unsaid"><td>Rather not say</td><td>2</td></tr>');
  });

  it('shows the loaded policy and the uptime', () => {
    const html = renderStatusPage(data());
    expect(html).toContain('<code data-field="hash">sha256:abc123</code>');
    expect(html).toContain('<code>policies/social.yaml</code>');
    expect(html).toContain('data-value="12307">3 h 25 min</dd>');
  });

  it('says so when no policy is loaded', () => {
    const html = renderStatusPage(data({ policy: undefined }));
    expect(html).toContain('data-figure="no-policy"');
    expect(html).not.toContain('data-field="hash"');
  });

  it.each([4, 1, 0])('withholds every usage figure with %i people active (k = 5)', (people) => {
    const html = renderStatusPage(data({}, { activePeople: people }));
    expect(html).toContain('data-figure="withheld"');
    for (const name of ['leisure-share', 'business-share', 'leisure-minutes-per-person', 'active-people', 'browsing-minutes', 'pages', 'purposes', 'quota-exhaustions']) {
      expect(html).not.toContain(`data-figure="${name}"`);
    }
    expect(textOf(html)).toContain('Fewer than 5 people have browsed today');
    // The policy and uptime are not about people and stay visible.
    expect(html).toContain('data-field="hash"');
  });

  it('escapes every value it prints', () => {
    const html = renderStatusPage(data({ policy: { hash: '<script>x</script>', files: ['a"b.yaml'], loadedAt: NOON }, version: '<b>' }));
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(html).toContain('a&quot;b.yaml');
    expect(html).toContain('&lt;b&gt;');
  });

  it('speaks French when asked, with French number formats', () => {
    const html = renderStatusPage(data(), 'fr');
    expect(html).toContain('<html lang="fr">');
    const text = textOf(html);
    expect(text).toContain('État de Leeway');
    expect(text).toContain('Part du temps de navigation consacrée aux loisirs');
    expect(text).toMatch(/15,0\s?%/);
    expect(text).toContain('7,5 min');
    expect(text).toContain('Je préfère ne pas répondre');
  });

  it('shows times in the policy time zone', () => {
    const html = renderStatusPage(data());
    // 11:00 UTC is 12:00 in Paris in November.
    expect(textOf(html)).toMatch(/Figures read at Nov 26, 2026, 12:00:00\s?PM/);
  });

  it('names no group at all, whatever the figures', () => {
    const html = renderStatusPage(data());
    expect(html).not.toMatch(/data-group|\bgroup\b/i);
  });
});
