/**
 * Mapping a field path back to where it is written in the YAML text, so validation errors can
 * name a line (yaml keeps every node's source range; LineCounter turns offsets into lines).
 */
import { isMap, isNode, isScalar, isSeq, type Document, type LineCounter } from 'yaml';

/**
 * yamlPosition - the 1-based line and column of the field at @path in @doc: the key of its last
 * segment found (a missing field points at the nearest enclosing key that exists), or the first
 * line when nothing on the path exists.
 */
export function yamlPosition(
  doc: Document,
  counter: LineCounter,
  path: ReadonlyArray<PropertyKey>,
): { line: number; column: number } {
  let node: unknown = doc.contents;
  let offset = isNode(node) && node.range ? node.range[0] : 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) break;
      const key = pair.key;
      if (isNode(key) && key.range) offset = key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!isNode(item) || !item.range) break;
      offset = item.range[0];
      node = item;
    } else break;
  }
  const pos = counter.linePos(offset);
  return { line: pos.line, column: pos.col };
}
