/** A decision in words, for `leeway explain` and failing `leeway test` cases. */
import type { Decision, EffectiveAction } from './types.js';

export function describeAction(action: EffectiveAction): string {
  switch (action.kind) {
    case 'allow':
      return 'allow';
    case 'readonly':
      return 'readonly (reading allowed; POST, PUT, PATCH and DELETE refused)';
    case 'block':
      return `block ("${action.reason}")`;
    case 'coach':
      return `coach (Continue lasts ${action.continueMinutes} min${action.purposeQuestion ? '; asks what the visit is for' : ''})`;
    case 'suggest':
      return `suggest ${action.alternative.name} <${action.alternative.url}> (Continue lasts ${action.continueMinutes} min${action.purposeQuestion ? '; asks what the visit is for' : ''})`;
  }
}

/** What the person will see next, in one sentence. */
export function nextStep(decision: Decision): string {
  const action = decision.action;
  const budget =
    decision.quota === undefined
      ? ''
      : decision.quota.exhausted
        ? `The daily budget for ${decision.quota.scope.kind} ${decision.quota.scope.name} is used up (${decision.quota.minutesUsed} of ${decision.quota.minutesPerDay} minutes). `
        : `${decision.quota.minutesLeft} of ${decision.quota.minutesPerDay} minutes are left today for ${decision.quota.scope.kind} ${decision.quota.scope.name}; the time counts. `;
  switch (action.kind) {
    case 'allow':
      return `${budget}The request goes through.`;
    case 'readonly':
      return `${budget}Pages load, but sending (POST, PUT, PATCH, DELETE) is refused.`;
    case 'block':
      return `${budget}The block page is shown: ${action.reason}`;
    case 'coach':
      return `${budget}The coach page is shown; Continue lets the visit go on for ${action.continueMinutes} minutes.${action.purposeQuestion ? ' It asks whether the visit is for work or a break.' : ''}`;
    case 'suggest':
      return `${budget}The suggest page offers ${action.alternative.name} (${action.alternative.url}); Continue lets the visit go on for ${action.continueMinutes} minutes.`;
  }
}

export function describeDecision(decision: Decision): string {
  const lines: string[] = [];
  lines.push(`category: ${decision.category ?? '(none)'}, site: ${decision.site ?? '(none)'}`);
  lines.push('');
  const width = Math.max(4, ...decision.trace.map((entry) => entry.ruleId.length));
  decision.trace.forEach((entry, index) => {
    const mark = entry.matched ? 'MATCH' : entry.needsInspection === true ? 'skip ' : 'no   ';
    lines.push(`  ${String(index + 1).padStart(3)}. ${entry.ruleId.padEnd(width)}  ${mark}  ${entry.reason}`);
  });
  if (decision.ruleId === 'default') lines.push(`       ${'default'.padEnd(width)}  MATCH  no rule matched`);
  lines.push('');
  const by = decision.ruleId === 'default' ? 'the default' : `rule ${decision.ruleId}`;
  const via = decision.ruleAction === 'quota' ? ' (quota)' : '';
  lines.push(`Decision: ${describeAction(decision.action)}, by ${by}${via}: "${decision.description}"`);
  lines.push(`Next: ${nextStep(decision)}`);
  if (decision.needsInspection) lines.push('Needs inspection: yes (the decision depends on the method or path of HTTPS requests)');
  return lines.join('\n');
}
