// `kubeprov join`: a worker joins the cluster init made (TLS bootstrap with a bootstrap token),
// turns Ready, and a second join changes nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerCleanup, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-join";
const WORKER = `${NAME}-worker`;
const home = mkdtempSync(join(tmpdir(), "kpt-join-"));
const kubeconfig = join(home, "admin.conf");

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--nodes", "2", "--no-kubernetes", "--no-kubeconfig"]);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  const init = await kubeprov(home, ["init", "--name", NAME]);
  assert.equal(init.code, 0, init.stderr.slice(-3000));
  assert.match(init.stdout, /kubeadm join \S+:6443 --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}/);
  const kc = await kubeprov(home, ["kubeconfig", "--name", NAME]);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("a worker joins through TLS bootstrap and turns Ready; joining again changes nothing", async () => {
  const r = await kubeprov(home, ["join", "--name", NAME, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  process.stderr.write(`# join of 1 worker: ${(r.ms / 1000).toFixed(1)} s\n`);
  const ms = await waitFor(async () => {
    const n = await kubectl(kubeconfig, ["get", "node", WORKER, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
    return n.stdout.trim() === "True";
  }, 90_000);
  assert.notEqual(ms, -1, "worker not Ready within 90 s");
  // The kubelet got its client certificate from an approved CSR of the bootstrap token's user.
  const csr = await kubectl(kubeconfig, ["get", "csr", "-o", "jsonpath={range .items[*]}{.spec.username} {.status.conditions[0].type}{\"\\n\"}{end}"]);
  assert.match(csr.stdout, /system:bootstrap:[a-z0-9]{6} Approved/);
  const files = await onNode(WORKER, "stat -c '%a %n' /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/kubelet.conf /var/lib/kubelet/pki/kubelet-client-current.pem 2>&1; ls /etc/kubernetes/manifests | wc -l");
  assert.match(files.stdout, /^600 \/etc\/kubernetes\/bootstrap-kubelet\.conf$/m);
  assert.match(files.stdout, /\/var\/lib\/kubelet\/pki\/kubelet-client-current\.pem/);
  const again = await kubeprov(home, ["join", "--name", NAME, "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"changed"')).join("\n"));
});
