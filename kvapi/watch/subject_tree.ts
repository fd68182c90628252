/**
 * An index of subscriptions by filter, so that finding the watchers of one
 * subject costs O(tokens x wildcard branches + matches), not O(watchers): a
 * trie keyed by token with a `*` branch and a `>` set at every node (the shape
 * of nats-server's sublist). Watchers of unrelated keys are never looked at.
 */

interface Node<T> {
  literal: Map<string, Node<T>>;
  star: Node<T> | undefined;
  /** Subscribers whose filter ends with `>` here (match one or more further tokens). */
  tail: Set<T>;
  /** Subscribers whose filter ends exactly here. */
  exact: Set<T>;
}

function newNode<T>(): Node<T> {
  return { literal: new Map(), star: undefined, tail: new Set(), exact: new Set() };
}

function isEmpty<T>(n: Node<T>): boolean {
  return n.literal.size === 0 && n.star === undefined && n.tail.size === 0 && n.exact.size === 0;
}

export class SubjectTree<T> {
  private readonly root: Node<T> = newNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `value` under a valid filter. Adding the same pair twice is a programmer error. */
  insert(filter: string, value: T): void {
    const tokens = filter.split(".");
    let node = this.root;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token === ">" && i === tokens.length - 1) {
        assertAbsent(node.tail, value);
        node.tail.add(value);
        this.count++;
        return;
      }
      if (token === "*") {
        node.star ??= newNode();
        node = node.star;
      } else {
        let next = node.literal.get(token);
        if (next === undefined) {
          next = newNode();
          node.literal.set(token, next);
        }
        node = next;
      }
    }
    assertAbsent(node.exact, value);
    node.exact.add(value);
    this.count++;
  }

  /** Removes `value` from `filter`; prunes empty branches. False if it was not there. */
  remove(filter: string, value: T): boolean {
    const tokens = filter.split(".");
    const path: Array<[Node<T>, string]> = [];
    let node: Node<T> | undefined = this.root;
    let removed = false;
    for (let i = 0; i < tokens.length && node !== undefined; i++) {
      const token = tokens[i]!;
      if (token === ">" && i === tokens.length - 1) {
        removed = node.tail.delete(value);
        node = undefined;
        break;
      }
      path.push([node, token]);
      node = token === "*" ? node.star : node.literal.get(token);
    }
    if (node !== undefined) removed = node.exact.delete(value);
    if (!removed) return false;
    this.count--;
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, token] = path[i]!;
      const child = token === "*" ? parent.star : parent.literal.get(token);
      if (child === undefined || !isEmpty(child)) break;
      if (token === "*") parent.star = undefined;
      else parent.literal.delete(token);
    }
    return true;
  }

  /** Calls `visit` once for every value whose filter matches the literal `subject`. */
  match(subject: string, visit: (value: T) => void): void {
    this.walk(this.root, subject.split("."), 0, visit);
  }

  private walk(node: Node<T>, tokens: string[], i: number, visit: (value: T) => void): void {
    if (i === tokens.length) {
      for (const v of node.exact) visit(v);
      return;
    }
    for (const v of node.tail) visit(v);
    const next = node.literal.get(tokens[i]!);
    if (next !== undefined) this.walk(next, tokens, i + 1, visit);
    if (node.star !== undefined) this.walk(node.star, tokens, i + 1, visit);
  }
}

function assertAbsent<T>(set: Set<T>, value: T): void {
  if (set.has(value)) throw new Error("kvapi assertion failed: subscription inserted twice");
}
