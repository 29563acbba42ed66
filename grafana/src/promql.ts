/**
 * Reads PromQL with the parser Prometheus' own UI uses, so tests can check dashboards and rules
 * without a running Prometheus: syntax errors, the metric names and the label names a query uses.
 */
import { parser } from '@prometheus-io/lezer-promql';

export interface PromqlFacts {
  /** Text of each syntax error node (empty when the expression parses). */
  readonly errors: readonly string[];
  readonly metrics: ReadonlySet<string>;
  /** Label names in matchers, `by`/`without` and `on`/`ignoring` clauses. */
  readonly labels: ReadonlySet<string>;
}

export function readPromql(expr: string): PromqlFacts {
  const errors: string[] = [];
  const metrics = new Set<string>();
  const labels = new Set<string>();
  parser.parse(expr).iterate({
    enter(node) {
      const text = expr.slice(node.from, node.to);
      if (node.type.isError) {
        errors.push(`${node.from}: ${JSON.stringify(text)}`);
      } else if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') {
        metrics.add(text);
      } else if (node.name === 'LabelName') {
        labels.add(text);
      }
    },
  });
  return { errors, metrics, labels };
}
