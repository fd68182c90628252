/**
 * Certificates made by openssl at test time, for the TLS tests of both ports: a CA, a
 * certificate it signed (valid for 2 days, SAN IP:127.0.0.1 and DNS:<name>), and one
 * that expired in 2020 (`openssl ca` accepts past dates, `x509 -req` does not).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** PEM files in the test's directory, as paths (for flags) and contents (for the SDK). */
export interface TestCert {
  cert: Buffer;
  key: Buffer;
  /** The CA that signed `cert`. */
  ca: Buffer;
  certPath: string;
  keyPath: string;
  caPath: string;
}

/** Runs `openssl <command>` in `dir` (the words of `command` contain no spaces). */
function ssl(dir: string, command: string): void {
  execFileSync("openssl", command.split(" "), { cwd: dir, stdio: "ignore" });
}

/** A self-signed CA `<name>.pem` / `<name>.key` in `dir`; returns the path of its PEM. */
export function makeCa(dir: string, name: string): string {
  ssl(
    dir,
    `req -x509 -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.pem -days 2 -subj /CN=${name}`,
  );
  return join(dir, `${name}.pem`);
}

function newRequest(dir: string, name: string): void {
  ssl(dir, `req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=${name}`);
}

function result(dir: string, ca: string, name: string): TestCert {
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}.key`);
  const caPath = join(dir, `${ca}.pem`);
  return {
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    ca: readFileSync(caPath),
    certPath,
    keyPath,
    caPath,
  };
}

/** A certificate for `name` signed by the CA `ca` (made by makeCa in the same `dir`). */
export function makeCert(dir: string, ca: string, name: string): TestCert {
  newRequest(dir, name);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1,DNS:${name}\n`);
  ssl(
    dir,
    `x509 -req -in ${name}.csr -CA ${ca}.pem -CAkey ${ca}.key -CAcreateserial -out ${name}.pem -days 2 -extfile ${name}.ext`,
  );
  return result(dir, ca, name);
}

/** A certificate for `name` signed by `ca` that was valid only on 2020-01-01. */
export function makeExpiredCert(dir: string, ca: string, name: string): TestCert {
  newRequest(dir, name);
  // One database per certificate, so serials never clash.
  const db = `db-${name}`;
  mkdirSync(join(dir, db), { recursive: true });
  writeFileSync(join(dir, db, "index.txt"), "");
  writeFileSync(join(dir, db, "serial"), "01\n");
  const cnf = [
    "[ca]",
    "default_ca = d",
    "[d]",
    `database = ${db}/index.txt`,
    `serial = ${db}/serial`,
    `new_certs_dir = ${db}`,
    "default_md = sha256",
    "policy = p",
    "x509_extensions = ext",
    "[p]",
    "commonName = supplied",
    "[ext]",
    `subjectAltName = IP:127.0.0.1,DNS:${name}`,
    "",
  ].join("\n");
  writeFileSync(join(dir, `${name}.cnf`), cnf);
  ssl(
    dir,
    `ca -batch -config ${name}.cnf -cert ${ca}.pem -keyfile ${ca}.key -in ${name}.csr -out ${name}.pem -startdate 20200101000000Z -enddate 20200102000000Z`,
  );
  return result(dir, ca, name);
}

/**
 * `streamkv server` flags for TLS on the client port with `cert`; with `clientCa`
 * (the path of a CA's PEM) mutual TLS.
 */
export function clientTlsArgs(cert: TestCert, clientCa?: string): string[] {
  const args = ["--tls-cert", cert.certPath, "--tls-key", cert.keyPath];
  return clientCa === undefined ? args : [...args, "--tls-client-ca", clientCa];
}

/** The wss:// URL of a server's client port on loopback. */
export function wssUrl(server: { clientPort: number }): string {
  return `wss://127.0.0.1:${server.clientPort}`;
}
