/**
 * The page frame shared by every Leeway page: one inline stylesheet, no scripts, no external
 * assets (a page shown in place of a blocked site must not depend on the network), and one
 * escaping function that every interpolated value goes through.
 */
import type { Lang } from './i18n.js';
import { STRINGS } from './i18n.js';

export const PRIVACY_PATH = '/.leeway/privacy';
export const CONTINUE_PATH = '/.leeway/continue';

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and double- or single-quoted attribute values. */
export function escapeHtml(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * Headers to send with every page: never cached (they carry a single-use token), and a CSP that
 * allows only the inline stylesheet, so an escaping slip still could not load or run anything.
 */
export function pageHeaders(): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  };
}

// Colours checked for WCAG AA: #1b1b1b on #fff 17:1, #fff on #0b5394 7.6:1, #0b5394 on #fff 7.6:1,
// #4a4a4a on #fff 8.9:1; focus ring #b35c00 on #fff 4.6:1 (non-text needs 3:1).
const STYLE = `
*{box-sizing:border-box}
body{margin:0;background:#fff;color:#1b1b1b;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:40rem;margin:2rem auto;padding:0 1.25rem}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.policy{border-left:4px solid #0b5394;background:#f3f6fa;padding:.75rem 1rem;margin:1rem 0}
.meta{color:#4a4a4a;font-size:.95rem}
fieldset{border:1px solid #767676;border-radius:4px;margin:1.25rem 0;padding:.75rem 1rem}
legend{padding:0 .25rem;font-weight:600}
label{display:block;padding:.25rem 0;cursor:pointer}
input[type=radio]{width:1.1rem;height:1.1rem;margin-right:.5rem;vertical-align:-.15rem}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:1.5rem 0}
.button{display:inline-block;font:inherit;font-weight:600;padding:.65rem 1.1rem;border-radius:4px;border:2px solid #0b5394;cursor:pointer;text-decoration:none;min-height:44px}
.primary{background:#0b5394;color:#fff}
.secondary{background:#fff;color:#0b5394}
a{color:#0b5394}
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
footer{margin-top:2rem;padding-top:1rem;border-top:1px solid #d0d0d0;font-size:.95rem}
`;

/** A whole document. `body` must already be escaped HTML. */
export function page(lang: Lang, title: string, body: string): string {
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · Leeway</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
<footer><a href="${PRIVACY_PATH}">${escapeHtml(STRINGS[lang].privacyLink)}</a></footer>
</main>
</body>
</html>
`;
}
