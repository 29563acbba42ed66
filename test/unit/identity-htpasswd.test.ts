import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Htpasswd } from '../../src/identity/htpasswd.js';
import { LeewayError } from '../../src/errors.js';

// Cost 4 keeps the suite fast; the format is the same as htpasswd -B's cost 5-10.
const b = (password: string): string => bcrypt.hashSync(password, 4);
const sha = (password: string): string => `{SHA}${createHash('sha1').update(password).digest('base64')}`;

let dir: string;
let file: string;
const bcryptB = b('alice-pw');
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-htpasswd-'));
  file = join(dir, 'users.htpasswd');
  await writeFile(
    file,
    [
      '# comment line',
      `alice:${bcryptB}`,
      `yves:${b('yves:pw').replace(/^\$2b\$/, '$2y$')}`,
      `anna:${b('anna-pw').replace(/^\$2b\$/, '$2a$')}`,
      '',
      `sam:${sha('sam-pw')}`,
      `zoë:${b('mot de passe')}`,
    ].join('\r\n'),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Counts bcrypt comparisons and the hashes they were asked about. */
function countingCompare(): { compare: (p: string, h: string) => Promise<boolean>; hashes: string[] } {
  const hashes: string[] = [];
  return {
    hashes,
    compare: async (p, h) => {
      hashes.push(h);
      return bcrypt.compare(p, h);
    },
  };
}

describe('Htpasswd.verify', () => {
  const cases: [string, string, string, boolean][] = [
    ['bcrypt $2b$', 'alice', 'alice-pw', true],
    ['bcrypt $2b$ wrong password', 'alice', 'nope', false],
    ['bcrypt $2y$, password with a colon', 'yves', 'yves:pw', true],
    ['bcrypt $2y$ wrong password', 'yves', 'yves', false],
    ['bcrypt $2a$', 'anna', 'anna-pw', true],
    ['{SHA}', 'sam', 'sam-pw', true],
    ['{SHA} wrong password', 'sam', 'sam-p', false],
    ['utf-8 user and password', 'zoë', 'mot de passe', true],
    ['unknown user', 'mallory', 'alice-pw', false],
    ['user names are case-sensitive', 'Alice', 'alice-pw', false],
    ['empty password', 'alice', '', false],
  ];
  it.each(cases)('%s', async (_name, user, password, expected) => {
    const h = await Htpasswd.load(file);
    expect(await h.verify(user, password)).toBe(expected);
  });

  it('counts its users', async () => {
    expect((await Htpasswd.load(file)).size).toBe(5);
  });

  it('spends one bcrypt compare on an unknown user, against a dummy hash', async () => {
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare });
    expect(await h.verify('mallory', 'x')).toBe(false);
    expect(c.hashes).toHaveLength(1);
    expect(c.hashes[0]).toMatch(/^\$2[aby]\$04\$/);
    expect(c.hashes[0]).not.toBe(bcryptB);
  });

  it('spends the same one bcrypt compare on a {SHA} user, right or wrong, so timing does not tell known names', async () => {
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare });
    expect(await h.verify('sam', 'wrong')).toBe(false);
    expect(await h.verify('sam', 'sam-pw')).toBe(true);
    expect(await h.verify('mallory', 'sam-pw')).toBe(false);
    expect(c.hashes).toHaveLength(3);
    // The same dummy hash as for an unknown user: the same work.
    expect(new Set(c.hashes).size).toBe(1);
  });

  it('remembers a success without comparing again, and never a failure', async () => {
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare });
    expect(await h.verify('alice', 'alice-pw')).toBe(true);
    expect(await h.verify('alice', 'alice-pw')).toBe(true);
    expect(c.hashes).toHaveLength(1);
    expect(await h.verify('alice', 'bad')).toBe(false);
    expect(await h.verify('alice', 'bad')).toBe(false);
    expect(c.hashes).toHaveLength(3);
  });

  it('keys the cache on user and password together', async () => {
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare });
    expect(await h.verify('alice', 'alice-pw')).toBe(true);
    // Same concatenation "alice" + "alice-pw" split differently must not hit the cache.
    expect(await h.verify('alicealice-pw', '')).toBe(false);
    expect(await h.verify('alic', 'ealice-pw')).toBe(false);
  });

  it('forgets a success after the TTL', async () => {
    let now = 1_000_000;
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare, clock: () => now, cacheTtlMs: 60_000 });
    await h.verify('alice', 'alice-pw');
    now += 59_000;
    await h.verify('alice', 'alice-pw');
    expect(c.hashes).toHaveLength(1);
    now += 2_000;
    await h.verify('alice', 'alice-pw');
    expect(c.hashes).toHaveLength(2);
  });

  it('bounds the cache', async () => {
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare, cacheMax: 1 });
    await h.verify('alice', 'alice-pw');
    await h.verify('anna', 'anna-pw');
    await h.verify('alice', 'alice-pw');
    expect(c.hashes).toHaveLength(3);
  });

  it('pays one compare for concurrent checks of the same credentials', async () => {
    const c = countingCompare();
    const h = await Htpasswd.load(file, { compare: c.compare });
    const results = await Promise.all(Array.from({ length: 6 }, () => h.verify('alice', 'alice-pw')));
    expect(results).toEqual([true, true, true, true, true, true]);
    expect(c.hashes).toHaveLength(1);
  });
});

describe('Htpasswd.load refuses', () => {
  const secretHash = '$apr1$abcdefgh$0123456789abcdefghijkl';
  const cases: [string, string, number][] = [
    ['MD5-crypt', `alice:${bcryptB}\nbob:${secretHash}\n`, 2],
    ['plain text', `# users\n\ncarol:hunter2\n`, 3],
    ['crypt(3)', `dave:rqXexS6ZhobKA\n`, 1],
    ['truncated bcrypt', `erin:${bcryptB.slice(0, 40)}\n`, 1],
    ['no colon', `frank\n`, 1],
    ['empty user', `:${bcryptB}\n`, 1],
    ['duplicate user', `alice:${bcryptB}\nalice:${bcryptB}\n`, 2],
  ];
  it.each(cases)('%s with file and line, never the hash', async (name, text, line) => {
    const path = await write(`bad-${name.replace(/\W/g, '')}.htpasswd`, text);
    const error = await Htpasswd.load(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LeewayError);
    const e = error as LeewayError;
    expect(e.code).toBe('LEEWAY_ERR_CONFIG');
    expect(e.message).toContain(`${path}:${line}:`);
    expect(e.context).toMatchObject({ file: path, line });
    for (const secret of [secretHash, 'hunter2', 'rqXexS6ZhobKA', bcryptB.slice(0, 40)]) {
      expect(e.message).not.toContain(secret);
      expect(JSON.stringify(e.context)).not.toContain(secret);
    }
  });

  it('a missing file, naming it', async () => {
    const path = join(dir, 'missing.htpasswd');
    await expect(Htpasswd.load(path)).rejects.toMatchObject({ code: 'LEEWAY_ERR_CONFIG', context: { file: path } });
  });
});
