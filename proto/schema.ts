/**
 * Loads the protobuf schemas. Each `proto/<name>.proto` is self-contained (its
 * own package `streamkv.<name>`) and is compiled to `proto/generated/<name>.ts`
 * by `npm run proto:gen`, so this module works in a browser as well as in Node.
 */
import protobuf from "protobufjs";

const roots = new Map<object, protobuf.Root>();

/** Builds (once) the protobufjs root for a generated descriptor. */
export function rootOf(descriptor: object): protobuf.Root {
  let root = roots.get(descriptor);
  if (!root) {
    root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
    roots.set(descriptor, root);
  }
  return root;
}

/** Looks up a message type by its full name, e.g. `streamkv.log.MessageRecord`. */
export function messageType(descriptor: object, fullName: string): protobuf.Type {
  return rootOf(descriptor).lookupType(fullName);
}
