/**
 * Every kind of mistake in test/fixtures/invalid-policies/ gives the exact `file:line:col message`
 * (paths relative to the repository root, where vitest runs).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { formatProblem, loadPolicy } from '../../src/policy/load.js';

const BASE = 'test/fixtures/invalid-policies';

const CASES: [kind: string, expected: string[]][] = [
  ['bad-action', [
    "bad-action/policy.yaml:4:13 rules[0].action: must be one of allow, coach, suggest, quota, readonly, block",
  ]],
  ['bad-name', [
    "bad-name/policy.yaml:2:3 sites: name \"Facebook\" must use lower-case letters, digits, - and _",
  ]],
  ['block-without-reason', [
    "block-without-reason/policy.yaml:7:13 rule \"block-malware\": a block needs a reason (shown on the block page)",
  ]],
  ['duplicate-name', [
    "duplicate-name/b.yaml:2:3 category \"social\" is already defined at test/fixtures/invalid-policies/duplicate-name/a.yaml:2:3",
  ]],
  ['duplicate-rule-id', [
    "duplicate-rule-id/policy.yaml:9:9 duplicate rule id \"leisure\" (first defined at test/fixtures/invalid-policies/duplicate-rule-id/policy.yaml:5:9)",
  ]],
  ['duplicate-setting', [
    "duplicate-setting/b.yaml:4:5 setting \"proxy.clients\" is already defined at test/fixtures/invalid-policies/duplicate-setting/a.yaml:4:5",
  ]],
  ['empty-range', [
    "empty-range/policy.yaml:4:9 empty range: from and to are both 12:00",
  ]],
  ['invalid-cidr', [
    "invalid-cidr/policy.yaml:5:9 invalid network \"10.300.0.0/16\": \"10.300.0.0\" is not an IP address",
    "invalid-cidr/policy.yaml:6:9 invalid network \"fd00::/129\": prefix length must be 0-128",
  ]],
  ['invalid-time', [
    "invalid-time/policy.yaml:4:43 invalid time \"25:00\": use HH:MM from 00:00 to 24:00",
    "invalid-time/policy.yaml:5:30 invalid time \"12:61\": use HH:MM from 00:00 to 24:00",
  ]],
  ['many-mistakes', [
    "many-mistakes/policy.yaml:6:15 rule \"one\": unknown category \"socail\"",
    "many-mistakes/policy.yaml:11:13 rules[1].action: must be one of allow, coach, suggest, quota, readonly, block",
    "many-mistakes/policy.yaml:12:5 rules[1]: unknown key \"colour\"",
    "many-mistakes/policy.yaml:15:15 rule \"three\": unknown schedule \"never\"",
  ]],
  ['missing-id', [
    "missing-id/policy.yaml:2:5 rules[0]: missing required key \"id\"",
  ]],
  ['quota-without-section', [
    "quota-without-section/policy.yaml:7:13 rule \"budget\": action quota needs a quota section (minutesPerDay, then)",
  ]],
  ['shadowed-rule', [
    "shadowed-rule/policy.yaml:7:9 rule \"block-malware\" can never match: rule \"allow-everything\" at test/fixtures/invalid-policies/shadowed-rule/policy.yaml:4:9 matches every request before it",
  ]],
  ['shadowed-by-wider-rule', [
    "shadowed-by-wider-rule/policy.yaml:11:9 rule \"staff-video\" can never match: rule \"leisure\" at test/fixtures/invalid-policies/shadowed-by-wider-rule/policy.yaml:7:9 matches every request it would",
    "shadowed-by-wider-rule/policy.yaml:16:9 rule \"facebook-host\" can never match: rule \"leisure\" at test/fixtures/invalid-policies/shadowed-by-wider-rule/policy.yaml:7:9 matches every request it would",
  ]],
  ['suggest-without-alternative', [
    "suggest-without-alternative/policy.yaml:8:13 rule \"group-posts\": suggest needs an alternative (name and url of the internal tool)",
  ]],
  ['unknown-category', [
    "unknown-category/policy.yaml:7:32 rule \"social\": unknown category \"socail-leisure\"",
  ]],
  ['unknown-do-not-inspect', [
    "unknown-do-not-inspect/policy.yaml:5:29 unknown category \"heatlh\" in settings.interception.doNotInspect",
  ]],
  ['unknown-group', [
    "unknown-group/policy.yaml:7:12 rule \"sales-only\": unknown group \"sales\"",
  ]],
  ['unknown-key', [
    "unknown-key/policy.yaml:4:5 rules[0]: unknown key \"actoin\"",
  ]],
  ['unknown-schedule', [
    "unknown-schedule/policy.yaml:8:15 rule \"at-lunch\": unknown schedule \"lunchtime\"",
  ]],
  ['unknown-site', [
    "unknown-site/policy.yaml:6:11 rule \"tiktok\": unknown site \"tiktok\"",
  ]],
  ['unknown-timezone', [
    "unknown-timezone/policy.yaml:2:13 unknown time zone \"Europe/Pariss\"",
    "unknown-timezone/policy.yaml:5:15 unknown time zone \"Mars/Olympus\"",
  ]],
  ['unreadable-list', [
    "unreadable-list/policy.yaml:3:13 cannot read list file \"lists/missing.domains\": ENOENT",
  ]],
  ['wrong-type', [
    "wrong-type/policy.yaml:3:14 categories.social.domains: must be a list",
  ]],
  ['yaml-syntax', [
    "yaml-syntax/policy.yaml:4:1 YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ]],
];

describe('invalid policies', () => {
  it('has a case for every fixture folder, and at least 15 kinds', () => {
    expect(CASES.map(([kind]) => kind).sort()).toEqual(readdirSync(BASE).sort());
    expect(CASES.length).toBeGreaterThanOrEqual(15);
  });

  it.each(CASES)('%s', async (kind, expected) => {
    const result = await loadPolicy(`${BASE}/${kind}`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map(formatProblem)).toEqual(expected.map((line) => `${BASE}/${line}`));
  });
});
