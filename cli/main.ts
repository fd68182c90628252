/** Entry point of the `streamkv` command (see DESIGN.md section 7). */
const [command] = process.argv.slice(2);

if (command === "server") {
  console.error("streamkv server: the server is not built yet (see the open issues).");
  process.exit(1);
}
console.error("usage: streamkv server | kv ... | cluster ...");
process.exit(command === undefined || command === "--help" ? 0 : 2);
