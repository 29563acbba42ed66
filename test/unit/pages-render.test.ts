import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LANGS, type Lang } from '../../src/pages/i18n.js';
import { escapeHtml, pageHeaders } from '../../src/pages/html.js';
import { renderBlockPage, renderCoachPage, renderErrorPage, renderReadonlyPage, renderSuggestPage } from '../../src/pages/render.js';

// Values that would break out of text or attributes if any template forgot to escape them.
const EVIL = `<script>alert("x")</script>' onmouseover="y" &amp;`;
const EVIL_ESCAPED = escapeHtml(EVIL);
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'pages');

const coach = {
  description: `Leisure sites: up to 60 minutes a day ${EVIL}`,
  site: `linkedin ${EVIL}`,
  category: `social-leisure ${EVIL}`,
  host: `www.linkedin.com${EVIL}`,
  continueAction: `/.leeway/continue?x="${EVIL}`,
  token: `tok.en"${EVIL}`,
  purposeQuestion: true,
  quota: { minutesUsed: 45.4, minutesLeft: 14.6, minutesPerDay: 60 },
};

interface Rendered {
  name: string;
  render: (lang: Lang) => string;
  form: boolean;
  description?: string;
}

const pages: Rendered[] = [
  { name: 'coach', render: (l) => renderCoachPage(coach, l), form: true, description: coach.description },
  { name: 'coach-plain', render: (l) => renderCoachPage({ ...coach, purposeQuestion: false, quota: undefined, site: undefined, category: undefined }, l), form: true, description: coach.description },
  {
    name: 'suggest',
    render: (l) => renderSuggestPage({ ...coach, alternative: { name: `Intranet communities ${EVIL}`, url: 'https://intranet.example/communities' } }, l),
    form: true,
    description: coach.description,
  },
  { name: 'block', render: (l) => renderBlockPage({ description: `Malware ${EVIL}`, reason: `Known dangerous ${EVIL}`, host: `bad.example${EVIL}`, category: 'malware' }, l), form: false, description: `Malware ${EVIL}` },
  { name: 'readonly', render: (l) => renderReadonlyPage({ description: `Forums read-only ${EVIL}`, host: `forum.example${EVIL}`, method: `POST${EVIL}` }, l), form: false, description: `Forums read-only ${EVIL}` },
  { name: 'error', render: (l) => renderErrorPage({ code: 'LEEWAY_ERR_UPSTREAM_TIMEOUT', title: `Origin did not answer ${EVIL}`, detail: `Try again ${EVIL}`, host: `slow.example${EVIL}` }, l), form: false },
];

const cases = pages.flatMap((p) => LANGS.map((lang) => [p.name, lang, p] as const));

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
});

describe('rendered pages', () => {
  it.each(cases)('%s (%s): structure, escaping, no external assets', async (name, lang, p) => {
    const html = p.render(lang);
    await writeFile(join(ARTIFACTS, `${name}.${lang}.html`), html);

    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain(`<html lang="${lang}">`);
    expect(html.match(/<h1[\s>]/g)).toHaveLength(1);
    expect(html).toContain('<meta charset="utf-8">');
    expect(html).toMatch(/<title>[^<]+<\/title>/);
    // Escaping: the raw payload never appears; its escaped form does.
    expect(html).not.toContain(EVIL);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\son[a-z]+="/i);
    expect(html).toContain(EVIL_ESCAPED);
    if (p.description !== undefined) expect(html).toContain(escapeHtml(p.description));
    // No external assets or scripts of any kind.
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/\ssrc=/i);
    expect(html).not.toMatch(/url\(/i);
    expect(html).toContain('<a href="/.leeway/privacy">');

    if (p.form) {
      expect(html).toContain(`<form method="post" action="${escapeHtml(coach.continueAction)}">`);
      expect(html).toContain(`<input type="hidden" name="token" value="${escapeHtml(coach.token)}">`);
      expect(html).toMatch(/<button type="submit" name="choice" value="continue"/);
    } else {
      expect(html).not.toContain('<form');
    }
  });

  it.each(LANGS)('coach (%s) asks the purpose with labelled radios and shows the quota', (lang) => {
    const html = renderCoachPage(coach, lang);
    for (const value of ['business', 'break', 'unsaid']) {
      expect(html).toContain(`<label for="purpose-${value}"><input type="radio" id="purpose-${value}" name="purpose" value="${value}"`);
    }
    expect(html).toContain('<fieldset>');
    expect(html).toContain('<legend>');
    expect(html.match(/ checked/g)).toHaveLength(1);
    // 45.4 used of 60, 14.6 left: shown as whole minutes.
    expect(html).toMatch(/45\D[^<]*60/);
    expect(html).toMatch(/15 minutes/);
    expect(html).toContain('<meter min="0" max="60" value="45"');
  });

  it('coach without the question or quota has neither', () => {
    const html = renderCoachPage({ ...coach, purposeQuestion: false, quota: undefined }, 'en');
    expect(html).not.toContain('name="purpose"');
    expect(html).not.toContain('<meter');
  });

  it.each(LANGS)('suggest (%s): the alternative is the first, primary button', (lang) => {
    const html = renderSuggestPage({ ...coach, alternative: { name: 'Yammer', url: 'https://intranet.example/y' } }, lang);
    const alt = html.indexOf('value="alternative"');
    const cont = html.indexOf('value="continue"');
    expect(alt).toBeGreaterThan(0);
    expect(cont).toBeGreaterThan(alt);
    expect(html).toMatch(/value="alternative" class="button primary">[^<]*Yammer/);
    expect(html).toMatch(/value="continue" class="button secondary">/);
  });

  it('speaks the chosen language', () => {
    expect(renderBlockPage({ description: 'd', reason: 'r', host: 'h' }, 'fr')).toContain('Ce site est bloqué');
    expect(renderBlockPage({ description: 'd', reason: 'r', host: 'h' }, 'en')).toContain('This site is blocked');
    expect(renderCoachPage(coach, 'fr')).toContain('Réseautage professionnel');
    expect(renderCoachPage(coach, 'en')).toContain('Business networking');
  });

  it('error page shows its code', () => {
    expect(renderErrorPage({ code: 'LEEWAY_ERR_UPSTREAM_TIMEOUT', title: 't', detail: 'd' }, 'en')).toContain('LEEWAY_ERR_UPSTREAM_TIMEOUT');
  });
});

describe('pageHeaders', () => {
  it('forbids caching and every external resource', () => {
    const h = pageHeaders();
    expect(h['cache-control']).toBe('no-store');
    expect(h['content-security-policy']).toContain("default-src 'none'");
    expect(h['content-type']).toBe('text/html; charset=utf-8');
  });
});

describe('escapeHtml', () => {
  it.each([
    ['<a href="x">', '&lt;a href=&quot;x&quot;&gt;'],
    ["it's & co", 'it&#39;s &amp; co'],
    [42, '42'],
    ['plain', 'plain'],
  ] as const)('%s', (input, expected) => {
    expect(escapeHtml(input)).toBe(expected);
  });
});
