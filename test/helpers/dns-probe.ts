// The DNS probe a user would run: a new pod that resolves kubernetes.default through CoreDNS.
// Used by the e2e tests and by `npm run bench` (one definition of the pod and of "it answered").
import { execa } from "execa";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";

/**
 * The pod: the kube-proxy image is Debian-based (it needs iptables), so it has getent, and it is
 * already on every node (nothing to pull or import). It succeeds once the name resolves.
 */
export function dnsProbePod(name: string, nodeName?: string): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      restartPolicy: "Never",
      ...(nodeName ? { nodeName } : {}),
      containers: [
        {
          name: "dns",
          image: `registry.k8s.io/kube-proxy:${DEFAULT_KUBERNETES_VERSION}`,
          imagePullPolicy: "Never",
          command: ["sh", "-c", "until getent hosts kubernetes.default.svc.cluster.local; do sleep 0.2; done"],
        },
      ],
    },
  };
}

/**
 * Creates the probe pod (retrying the create while the API or the default ServiceAccount is not
 * there yet, as a user would) and waits until it succeeded. Milliseconds it took, or -1 when it did
 * not succeed within limitMs (a Failed pod throws).
 */
export async function newPodResolvesDns(kubectlBin: string, kubeconfig: string, name: string, limitMs: number, nodeName?: string): Promise<number> {
  const t0 = Date.now();
  const kc = ["--kubeconfig", kubeconfig, "--request-timeout=5s"];
  const pod = JSON.stringify(dnsProbePod(name, nodeName));
  while (Date.now() - t0 < limitMs) {
    const r = await execa(kubectlBin, [...kc, "apply", "-f", "-"], { input: pod, reject: false, timeout: 10_000 });
    if (r.exitCode === 0) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  while (Date.now() - t0 < limitMs) {
    const phase = String((await execa(kubectlBin, [...kc, "-n", "default", "get", "pod", name, "-o", "jsonpath={.status.phase}"], { reject: false, timeout: 10_000 })).stdout);
    if (phase === "Succeeded") return Date.now() - t0;
    if (phase === "Failed") throw new Error(`the DNS probe pod ${name} failed`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return -1;
}
