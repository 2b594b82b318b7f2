// The docker driver's read-only questions over the Engine API socket, against this machine's real
// Docker daemon: they must answer exactly what the docker CLI answers (it is a client of the same
// API), and fall back to the CLI where the socket is not the daemon the CLI would use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execa } from "execa";
import { engineGet, engineSocket, listPath } from "../../provisioner/drivers/docker/api.js";
import { checkDaemon, inspect, listIds } from "../../provisioner/drivers/docker/cli.js";

test("engineSocket: the default socket, unix:// DOCKER_HOST; none for TCP, SSH or a docker context", () => {
  const sock = engineSocket({});
  assert.equal(sock, "/var/run/docker.sock", "this machine's daemon listens on the default socket");
  assert.equal(engineSocket({ DOCKER_HOST: "unix:///var/run/docker.sock" }), "/var/run/docker.sock");
  assert.equal(engineSocket({ DOCKER_HOST: "unix:///nonexistent/docker.sock" }), undefined);
  assert.equal(engineSocket({ DOCKER_HOST: "tcp://127.0.0.1:2375" }), undefined);
  assert.equal(engineSocket({ DOCKER_HOST: "ssh://user@example" }), undefined);
  assert.equal(engineSocket({ DOCKER_CONTEXT: "remote" }), undefined);
});

test("listPath: all containers, label filters encoded as the API wants them", () => {
  assert.equal(listPath("containers"), "/containers/json?all=1");
  assert.equal(decodeURIComponent(listPath("networks", ["io.kubeprov.cluster=demo"])), '/networks?filters={"label":["io.kubeprov.cluster=demo"]}');
});

test("the API's answers are the CLI's: version, a network inspected, a missing object, containers listed", async () => {
  // Each question is answered by the API itself (a wrong path would fall back to the CLI unseen).
  for (const path of [listPath("containers"), listPath("networks", ["io.kubeprov.cluster"]), listPath("volumes"), "/version", "/networks/bridge"]) {
    const a = await engineGet("/var/run/docker.sock", path);
    assert.ok("status" in a && a.status === 200, `${path}: ${JSON.stringify(a).slice(0, 200)}`);
  }
  const cli = (args: string[]) => execa("docker", args).then((r) => String(r.stdout).trim());
  assert.equal((await checkDaemon()).serverVersion, await cli(["version", "--format", "{{.Server.Version}}"]));
  const [viaApi] = await inspect("network", ["bridge"]);
  const [viaCli] = JSON.parse(await cli(["network", "inspect", "bridge"]));
  assert.equal(viaApi.Id, viaCli.Id);
  assert.deepEqual(viaApi.IPAM, viaCli.IPAM);
  assert.deepEqual(await inspect("container", ["kpt-no-such-container"]), []);
  assert.deepEqual((await listIds("containers")).sort(), (await cli(["ps", "--all", "--quiet", "--no-trunc"])).split("\n").filter(Boolean).sort());
  assert.deepEqual((await listIds("networks")).sort(), (await cli(["network", "ls", "--quiet", "--no-trunc"])).split("\n").filter(Boolean).sort());
});

test("engineGet: a socket nothing listens on is unreachable, not an exception", async () => {
  const a = await engineGet("/nonexistent/docker.sock", "/version", 2000);
  assert.ok("unreachable" in a && /ENOENT/.test(a.unreachable), JSON.stringify(a));
});
