import { describe, expect, it } from 'vitest';
import { parseContinueForm } from '../../src/pages/continue-form.js';

describe('parseContinueForm', () => {
  const cases: [string, string, ReturnType<typeof parseContinueForm>][] = [
    ['token only', 'token=abc.def', { token: 'abc.def', choice: 'continue', purpose: undefined }],
    ['continue with purpose', 'token=t&choice=continue&purpose=business', { token: 't', choice: 'continue', purpose: 'business' }],
    ['alternative', 'choice=alternative&token=t', { token: 't', choice: 'alternative', purpose: undefined }],
    ['break', 'token=t&purpose=break', { token: 't', choice: 'continue', purpose: 'break' }],
    ['unsaid', 'token=t&purpose=unsaid', { token: 't', choice: 'continue', purpose: 'unsaid' }],
    ['unknown purpose dropped', 'token=t&purpose=shopping', { token: 't', choice: 'continue', purpose: undefined }],
    ['unknown choice is continue', 'token=t&choice=elsewhere', { token: 't', choice: 'continue', purpose: undefined }],
    ['url-encoded token', 'token=a%2Bb%3D', { token: 'a+b=', choice: 'continue', purpose: undefined }],
    ['no token', 'choice=continue', undefined],
    ['empty token', 'token=', undefined],
    ['empty body', '', undefined],
    ['too large', `token=${'x'.repeat(40_000)}`, undefined],
  ];
  it.each(cases)('%s', (_name, body, expected) => {
    expect(parseContinueForm(body)).toEqual(expected);
  });
});
