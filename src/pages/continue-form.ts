/**
 * The body of POST /.leeway/continue, as the coach and suggest pages send it
 * (application/x-www-form-urlencoded; see render.ts for the fields).
 */

export type Purpose = 'business' | 'break' | 'unsaid';
export type ContinueChoice = 'continue' | 'alternative';

export interface ContinueForm {
  readonly token: string;
  readonly choice: ContinueChoice;
  /** Absent when the page did not ask, or the answer was not one of ours. */
  readonly purpose: Purpose | undefined;
}

/** A form body larger than this is not one of our pages' forms. */
export const MAX_CONTINUE_FORM_BYTES = 32_768;

const PURPOSES: readonly Purpose[] = ['business', 'break', 'unsaid'];

/** Parses the form body; undefined when there is no token or the body is too large. */
export function parseContinueForm(body: string): ContinueForm | undefined {
  if (body.length > MAX_CONTINUE_FORM_BYTES) return undefined;
  const params = new URLSearchParams(body);
  const token = params.get('token');
  if (token === null || token === '') return undefined;
  const choice: ContinueChoice = params.get('choice') === 'alternative' ? 'alternative' : 'continue';
  const raw = params.get('purpose');
  const purpose = PURPOSES.find((p) => p === raw);
  return { token, choice, purpose };
}
