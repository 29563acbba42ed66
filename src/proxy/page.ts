/**
 * The page action: answers a request with one of the pages of src/pages (coach, suggest, block,
 * read-only, error) in the client's language, and reads the Continue form posted back.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LeewayError } from '../errors.js';
import { ERROR_CODES } from '../errors.js';
import type { CompiledPolicy, Decision } from '../policy/types.js';
import { pickLanguage } from '../pages/i18n.js';
import type { Lang } from '../pages/i18n.js';
import { CONTINUE_PATH, pageHeaders } from '../pages/html.js';
import { renderBlockPage, renderCoachPage, renderErrorPage, renderReadonlyPage, renderSuggestPage } from '../pages/render.js';
import { MAX_CONTINUE_FORM_BYTES, parseContinueForm } from '../pages/continue-form.js';
import type { ContinueForm } from '../pages/continue-form.js';
import type { PageKind } from './account.js';
import type { RequestTarget } from './target.js';

export { CONTINUE_PATH };

const PAGE_HEADERS = Object.freeze(pageHeaders());

export function pageLanguage(req: IncomingMessage): Lang {
  return pickLanguage(req.headers['accept-language']);
}

export interface PolicyPageRequest {
  readonly page: PageKind;
  readonly decision: Decision;
  readonly host: string;
  /** The Continue token, for coach and suggest pages. */
  readonly token: string | undefined;
  readonly policy: CompiledPolicy;
}

export function sendPolicyPage(req: IncomingMessage, res: ServerResponse, p: PolicyPageRequest): void {
  const lang = pageLanguage(req);
  const { decision, host } = p;
  const common = {
    description: decision.description,
    host,
    ...(decision.site === undefined ? {} : { site: decision.site }),
    ...(decision.category === undefined ? {} : { category: decision.category }),
  };
  const action = decision.action;
  let html: string;
  // Pages replace a response the client asked for; 403 keeps scripts and caches from taking them for content.
  const status = 403;
  if ((action.kind === 'coach' || action.kind === 'suggest') && p.token !== undefined) {
    const coach = {
      ...common,
      continueAction: CONTINUE_PATH,
      token: p.token,
      purposeQuestion: action.purposeQuestion,
      ...(decision.quota === undefined ? {} : { quota: { minutesUsed: decision.quota.minutesUsed, minutesLeft: decision.quota.minutesLeft, minutesPerDay: decision.quota.minutesPerDay } }),
    };
    html = action.kind === 'suggest' ? renderSuggestPage({ ...coach, alternative: action.alternative }, lang) : renderCoachPage(coach, lang);
  } else if (action.kind === 'block') {
    html = renderBlockPage({ ...common, reason: action.reason }, lang);
  } else {
    html = renderReadonlyPage({ description: decision.description, host, method: req.method ?? 'POST' }, lang);
  }
  send(res, status, html, { 'X-Leeway-Reason': `${p.page}; rule=${asciiOnly(decision.ruleId)}` });
}

export function sendErrorPage(res: ServerResponse, error: LeewayError, lang: Lang, host?: string): void {
  const html = renderErrorPage(
    { code: error.code, title: titleOf(error), detail: error.message, ...(host === undefined ? {} : { host }) },
    lang,
  );
  send(res, error.status, html, { 'X-Leeway-Reason': asciiOnly(error.code) });
}

function send(res: ServerResponse, status: number, html: string, extra: Record<string, string>): void {
  const body = Buffer.from(html, 'utf8');
  res.writeHead(status, { ...PAGE_HEADERS, ...extra, 'content-length': String(body.length) });
  res.end(body);
}

function titleOf(error: LeewayError): string {
  // ERROR_CODES titles are English; the page's frame and strings around it follow the language.
  return error.code === 'LEEWAY_ERR_UPSTREAM_TLS' ? `Origin certificate is not valid: ${error.message}` : ERROR_TITLES[error.code] ?? 'Error';
}

const ERROR_TITLES: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, entry]) => [code, entry.title]));

function asciiOnly(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * Reads the Continue form (POST, urlencoded, size-capped). The token travels in the body, not
 * the URL, so it never lands in history, logs or Referer headers.
 */
export function readContinueForm(req: IncomingMessage, _target: RequestTarget, done: (form: ContinueForm | undefined) => void): void {
  if (req.method !== 'POST') {
    req.resume();
    return done(undefined);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const finish = (form: ContinueForm | undefined): void => {
    if (settled) return;
    settled = true;
    done(form);
  };
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_CONTINUE_FORM_BYTES) {
      req.resume();
      req.removeAllListeners('data');
      return finish(undefined);
    }
    chunks.push(chunk);
  });
  req.on('end', () => finish(parseContinueForm(Buffer.concat(chunks).toString('utf8'))));
  req.on('error', () => finish(undefined));
}
