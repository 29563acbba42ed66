/**
 * One parsed policy file with its source map, so every problem can name `file:line:col`.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';

export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export type YamlPath = readonly (string | number)[];

export class YamlSource {
  readonly file: string;
  readonly doc: Document;
  readonly lines: LineCounter;

  constructor(file: string, text: string) {
    this.file = file;
    this.lines = new LineCounter();
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: true, uniqueKeys: true });
  }

  /** Syntax errors of the YAML itself, first line of each message only. */
  syntaxErrors(): { pos: SourcePosition; message: string }[] {
    return this.doc.errors.map((error) => {
      const first = error.linePos?.[0] ?? { line: 1, col: 1 };
      const message = (error.message.split('\n')[0] ?? error.code).replace(/ at line \d+, column \d+:?$/, '');
      return { pos: { file: this.file, line: first.line, col: first.col }, message: `YAML: ${message}` };
    });
  }

  private positionOfOffset(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, col };
  }

  /**
   * Position of the node at `path` (of its key when `key` is true). Falls back to the deepest
   * existing ancestor, so a problem always has a place.
   */
  at(path: YamlPath, key = false): SourcePosition {
    let node: unknown = this.doc.contents;
    let best: number = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i];
      let next: unknown;
      let keyNode: unknown;
      if (isMap(node)) {
        const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment));
        if (pair !== undefined) {
          keyNode = pair.key;
          next = pair.value;
        }
      } else if (isSeq(node) && typeof segment === 'number') {
        next = node.items[segment];
      }
      if (next === undefined && keyNode === undefined) break;
      const last = i === path.length - 1;
      if (last && key && keyNode !== undefined) {
        best = rangeStart(keyNode) ?? best;
        break;
      }
      best = rangeStart(next) ?? rangeStart(keyNode) ?? best;
      node = next;
    }
    return this.positionOfOffset(best);
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

/** `rules[0].action` from ['rules', 0, 'action']. */
export function formatPath(path: YamlPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? segment : `.${segment}`;
  }
  return text;
}
