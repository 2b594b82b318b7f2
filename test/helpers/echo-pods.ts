// Pods of the echo fixture (test/e2e/fixtures/echo) for the data-plane tests: servers pinned to a
// node, one-shot clients that print what a server answered, and their pod IPs.
import assert from "node:assert/strict";
import { execa } from "execa";
import { KUBECTL, kubectl, waitFor } from "./cluster-e2e.js";

export interface EchoPods {
  /** `kubectl apply` of a List of objects. */
  apply(objects: unknown[]): Promise<void>;
  /** A pod of the echo image on `node` running `echo ARGS`. */
  pod(name: string, node: string, args: string[], labels?: Record<string, string>): unknown;
  /** The pod IP of a pod once it runs. */
  podIP(name: string): Promise<string>;
  /** Runs `echo get URL` in a pod on `node` and returns what it printed. */
  getFrom(node: string, name: string, url: string): Promise<string>;
}

export function echoPods(kubeconfig: string, image: string): EchoPods {
  const apply = async (objects: unknown[]) => {
    const r = await execa(KUBECTL, ["--kubeconfig", kubeconfig, "apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }), reject: false });
    assert.equal(r.exitCode, 0, String(r.stderr));
  };
  const pod = (name: string, node: string, args: string[], labels: Record<string, string> = {}) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels },
    spec: { nodeName: node, restartPolicy: "Never", containers: [{ name: "echo", image: `docker.io/library/${image}`, imagePullPolicy: "Never", args }] },
  });
  return {
    apply,
    pod,
    async podIP(name) {
      let ip = "";
      const ms = await waitFor(async () => {
        const r = await kubectl(kubeconfig, ["get", "pod", name, "-o", "jsonpath={.status.phase} {.status.podIP}"]);
        const [phase, addr] = r.stdout.trim().split(" ");
        ip = addr ?? "";
        return phase === "Running" && !!ip;
      }, 90_000);
      assert.notEqual(ms, -1, `pod ${name} not running with an IP`);
      return ip;
    },
    async getFrom(node, name, url) {
      await apply([pod(name, node, ["get", url])]);
      let out = "";
      const ms = await waitFor(async () => {
        const phase = (await kubectl(kubeconfig, ["get", "pod", name, "-o", "jsonpath={.status.phase}"])).stdout;
        if (phase !== "Succeeded" && phase !== "Failed") return false;
        out = (await kubectl(kubeconfig, ["logs", name])).stdout;
        return true;
      }, 90_000);
      assert.notEqual(ms, -1, `pod ${name} did not finish`);
      return out;
    },
  };
}
