/**
 * deploy/k8s/ checked offline (no Kubernetes cluster is reachable here): every manifest
 * parses and passes the Kubernetes JSON schemas (kubernetes-models' validators), the
 * pieces fit together (selectors, the headless Service, probes, volumes, the PDB), and
 * each pod's container args, with $(VAR) expanded the way the kubelet does, go through
 * the server's own config parser: every flag is one `streamkv server` accepts, and the
 * three pods see one member list in which each finds itself.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { StatefulSet } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Service } from "kubernetes-models/v1";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseServerConfig, type ServerConfig } from "../node/index.js";
import { removeDir, repoRoot, tempDir } from "../test_support/index.js";

const k8sDir = join(repoRoot, "deploy", "k8s");
const NAMESPACE = "streamkv";

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  // biome-ignore lint/suspicious/noExplicitAny: a manifest is checked by schema, then read by path
  body: any;
}

const validators: Record<string, (body: object) => { validate(): void }> = {
  "apps/v1 StatefulSet": (b) => new StatefulSet(b as never),
  "v1 Service": (b) => new Service(b as never),
  "policy/v1 PodDisruptionBudget": (b) => new PodDisruptionBudget(b as never),
};

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(k8sDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    if (file === "kustomization.yaml") continue;
    for (const doc of parseAllDocuments(readFileSync(join(k8sDir, file), "utf8"))) {
      expect(doc.errors, file).toEqual([]);
      const body = doc.toJS();
      out.push({ file, apiVersion: body.apiVersion, kind: body.kind, body });
    }
  }
  return out;
}

const all = manifests();
const one = (kind: string, name?: string) => {
  const found = all.filter(
    (m) => m.kind === kind && (name === undefined || m.body.metadata.name === name),
  );
  expect(found, `${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0]!.body;
};
const sts = one("StatefulSet");
const pod = sts.spec.template.spec;
const container = pod.containers[0];

/** The kubelet's $(VAR) expansion of the container's args, for one pod. */
function argsOf(podName: string): string[] {
  const env: Record<string, string> = { POD_NAME: podName, POD_NAMESPACE: NAMESPACE };
  for (const e of container.env) if (typeof e.value === "string") env[e.name] = e.value;
  return (container.args as string[]).map((a) =>
    a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole),
  );
}

const dataDirs: string[] = [];
afterAll(() => {
  for (const d of dataDirs) removeDir(d);
});

/**
 * What `streamkv server` would run with in pod `podName`. The parser creates --data, so
 * it points at a temporary directory here (the only value changed).
 */
function configOf(podName: string): ServerConfig {
  const args = argsOf(podName);
  expect(args[0]).toBe("server");
  const data = args.indexOf("--data");
  const dir = tempDir("streamkv-k8s-");
  dataDirs.push(dir);
  const argv = [...args.slice(1, data + 1), dir, ...args.slice(data + 2)];
  const env = Object.fromEntries(
    (container.env as Array<{ name: string; value?: string }>)
      .filter((e) => e.name.startsWith("STREAMKV_") && e.value !== undefined)
      .map((e) => [e.name, e.value]),
  );
  return parseServerConfig(argv, env);
}

describe("deploy/k8s manifests", () => {
  it("each passes the Kubernetes schema of its kind", () => {
    expect(all.map((m) => `${m.file}: ${m.apiVersion} ${m.kind}`)).toEqual([
      "pdb.yaml: policy/v1 PodDisruptionBudget",
      "services.yaml: v1 Service",
      "services.yaml: v1 Service",
      "statefulset.yaml: apps/v1 StatefulSet",
    ]);
    for (const m of all) {
      const make = validators[`${m.apiVersion} ${m.kind}`];
      expect(make, `${m.file}: no validator for ${m.apiVersion} ${m.kind}`).toBeDefined();
      expect(() => make!(m.body).validate(), m.file).not.toThrow();
    }
    const kustomization = parseAllDocuments(
      readFileSync(join(k8sDir, "kustomization.yaml"), "utf8"),
    )[0]!.toJS();
    expect([...kustomization.resources].sort()).toEqual(
      [...new Set(all.map((m) => m.file))].sort(),
    );
  });

  it("the validator is not a rubber stamp", () => {
    const broken = structuredClone(sts);
    broken.spec.template.spec.containers[0].ports[0].containerPort = "7420";
    expect(() => new StatefulSet(broken).validate()).toThrow(/containerPort/);
  });

  it("fits together: selectors, stable peer names, probes, volumes, limits, non-root, PDB", () => {
    const labels = sts.spec.template.metadata.labels;
    expect(sts.spec.selector.matchLabels).toEqual(labels);
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.podManagementPolicy).toBe("Parallel");
    const peer = one("Service", sts.spec.serviceName);
    expect(peer.spec.clusterIP).toBe("None");
    expect(peer.spec.publishNotReadyAddresses).toBe(true);
    for (const svc of all.filter((m) => m.kind === "Service")) {
      expect(svc.body.spec.selector, svc.body.metadata.name).toEqual(labels);
    }
    expect(one("Service", "streamkv").spec.ports.map((p: { port: number }) => p.port)).toEqual([
      7420,
    ]);
    const pdb = one("PodDisruptionBudget");
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(labels);

    const ports = Object.fromEntries(
      container.ports.map((p: { name: string; containerPort: number }) => [
        p.name,
        p.containerPort,
      ]),
    );
    expect(ports).toEqual({ client: 7420, peer: 7421, metrics: 9420 });
    // The client port serves https:// with --tls-cert, so the probes ask over HTTPS.
    expect(container.readinessProbe.httpGet).toEqual({
      path: "/readyz",
      port: "client",
      scheme: "HTTPS",
    });
    expect(container.livenessProbe.httpGet).toEqual({
      path: "/healthz",
      port: "client",
      scheme: "HTTPS",
    });
    for (const kind of ["requests", "limits"]) {
      expect(Object.keys(container.resources[kind]).sort(), kind).toEqual(["cpu", "memory"]);
    }
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    const anti = pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    expect(anti[0].topologyKey).toBe("kubernetes.io/hostname");
    expect(anti[0].labelSelector.matchLabels).toEqual(labels);

    // --data is the claim's mount; every mounted file flag is under a mounted volume.
    const mounts = new Map<string, string>(
      container.volumeMounts.map((m: { name: string; mountPath: string }) => [m.mountPath, m.name]),
    );
    const args = argsOf("streamkv-0");
    const flag = (name: string) => args[args.indexOf(name) + 1]!;
    expect(mounts.get(flag("--data"))).toBe(sts.spec.volumeClaimTemplates[0].metadata.name);
    for (const f of [
      "--peer-secret-file",
      "--tokens-file",
      "--tls-cert",
      "--tls-key",
      "--peer-tls-cert",
      "--peer-tls-key",
      "--peer-tls-ca",
    ]) {
      const dir = flag(f).slice(0, flag(f).lastIndexOf("/"));
      const volume = pod.volumes.find((v: { name: string }) => v.name === mounts.get(dir));
      expect(volume?.secret?.secretName, f).toMatch(/^streamkv-/);
      expect(volume.secret.defaultMode, f).toBe(0o440);
    }

    // Termination: the drain (--shutdown-timeout-ms), the leadership hand-over (2 s)
    // and the process's own 5 s margin all fit before the kubelet's SIGKILL.
    const shutdownMs = Number(flag("--shutdown-timeout-ms"));
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(shutdownMs + 2000 + 5000);
  });

  it("every pod's args are flags the server accepts, and they agree on the members", () => {
    const pods = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`);
    const configs = pods.map(configOf);
    const peerService = sts.spec.serviceName;
    const expectedPeers = pods.map((name) => ({
      id: name,
      host: `${name}.${peerService}.${NAMESPACE}.svc.cluster.local`,
      port: 7421,
    }));
    for (const [i, c] of configs.entries()) {
      expect(c.id).toBe(pods[i]);
      expect(c.peers).toEqual(expectedPeers);
      expect(c.host).toBe("0.0.0.0");
      expect(c.clientPort).toBe(7420);
      expect(c.peerPort).toBe(7421);
      expect(c.advertiseClientUrl).toBe(
        `wss://${pods[i]}.${peerService}.${NAMESPACE}.svc.cluster.local:7420`,
      );
      expect(c.metricsListen).toBe("0.0.0.0:9420");
      expect(c.logLevel).toBe("info");
      expect(c.join).toBe(false);
    }
    // One cluster identity, given, so that growing --peers keeps the data dirs valid.
    expect(new Set(configs.map((c) => c.clusterId))).toEqual(new Set(["streamkv"]));
    console.log(
      `k8s peers as the pods see them: ${argsOf("streamkv-0")[argsOf("streamkv-0").indexOf("--peers") + 1]}`,
    );
  });
});
