import { afterEach, describe, expect, it } from 'vitest';
import { OUTSIDER, T0, USERS, driveTraffic, filesWritten, readAll, removeHarnessDir, startHarness } from './accounting-harness.js';
import type { Harness } from './accounting-harness.js';
import type { AccessLogMode } from '../../src/policy/types.js';

/** Everything that identifies a person or a page in the test traffic. */
function secretsOf(traffic: { paths: string[]; queries: string[] }): string[] {
  return [
    ...USERS.map((u) => u.name),
    ...USERS.map((u) => u.password),
    ...USERS.map((u) => u.localAddress),
    ...traffic.paths,
    ...traffic.queries,
  ];
}

function leaks(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((secret) => text.includes(secret));
}

describe('privacy: no name, password, client address, path or query leaves the proxy', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    if (h !== undefined) {
      await h.close();
      await removeHarnessDir(h);
      h = undefined;
    }
  });

  const modes: { mode: AccessLogMode; accessLines: boolean; pseudonyms: boolean }[] = [
    { mode: 'aggregate-only', accessLines: false, pseudonyms: false },
    { mode: 'anonymous', accessLines: true, pseudonyms: false },
    { mode: 'pseudonymous', accessLines: true, pseudonyms: true },
  ];

  it.each(modes)('access log $mode', async ({ mode, accessLines, pseudonyms }) => {
    h = await startHarness(mode);
    const traffic = await driveTraffic(h);
    // A page too: one person exhausts the social budget and is coached.
    const keen = USERS[5];
    if (keen === undefined) throw new Error('no user');
    for (let minute = 2; minute <= 3; minute += 1) {
      h.setNow(T0 + minute * 60_000);
      await h.get(keen, `http://www.facebook.test:${h.originPort}/coached/${keen.name}-private-page?secret=${keen.name}-token-coached`);
    }
    traffic.paths.push(`/coached/${keen.name}-private-page`);
    traffic.queries.push(`secret=${keen.name}-token-coached`);
    // Someone outside the allowed networks is refused; their address may appear in that one line.
    const refused = await h.get(OUTSIDER, `http://www.facebook.test:${h.originPort}/outsider/${OUTSIDER.name}-private-page?secret=${OUTSIDER.name}-token`);
    expect(refused.status).toBe(403);
    traffic.paths.push(`/outsider/${OUTSIDER.name}-private-page`);
    traffic.queries.push(`secret=${OUTSIDER.name}-token`);
    const secrets = [...secretsOf(traffic), OUTSIDER.name, OUTSIDER.password];
    expect(h.originSaw.some((path) => path.includes(`${keen.name}-private-page`))).toBe(true);

    const metrics = await h.scrape('/metrics');
    const status = await h.scrape('/');
    expect(metrics.status).toBe(200);
    expect(status.status).toBe(200);
    expect(leaks(metrics.body, secrets)).toEqual([]);
    expect(leaks(status.body, secrets)).toEqual([]);

    expect(h.logLines.length).toBeGreaterThan(0);
    expect(leaks(h.logLines.join('\n'), secrets)).toEqual([]);
    const withOutsiderAddress = h.logLines.filter((line) => line.includes(OUTSIDER.localAddress));
    expect(withOutsiderAddress).toHaveLength(1);
    expect(withOutsiderAddress[0]).toContain('refused');
    expect(metrics.body).not.toContain(OUTSIDER.localAddress);
    const parsed = h.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const access = parsed.filter((line) => line.msg === 'access');
    expect(access.length > 0).toBe(accessLines);
    if (accessLines) expect(access.length).toBe(30 * 4 + 2);
    const withPseudonym = access.filter((line) => typeof line.pseudonym === 'string');
    expect(withPseudonym.length).toBe(pseudonyms ? access.length : 0);
    if (pseudonyms) {
      // Only pseudonyms: one per person, none of them a name.
      expect(new Set(withPseudonym.map((line) => line.pseudonym)).size).toBe(30);
      expect(parsed.filter((line) => line.level === 'warn' && line.accessLog === 'pseudonymous')).toHaveLength(1);
    }
    for (const line of access) {
      expect(Object.keys(line).sort()).toEqual(
        ['action', 'bytesIn', 'bytesOut', 'category', 'durationMs', 'kind', 'level', 'log', 'msg', 'service', 'site', 'status', 'time', ...(pseudonyms ? ['pseudonym'] : [])].sort(),
      );
    }

    await h.close();
    const written = await filesWritten(h);
    expect(leaks(await readAll(written), secrets)).toEqual([]);
    // The search itself works: the htpasswd file the test wrote does name the users.
    expect(leaks(await readAll([...h.inputFiles.keys()]), secrets).length).toBeGreaterThanOrEqual(30);
    await removeHarnessDir(h);
    h = undefined;
  });
});
