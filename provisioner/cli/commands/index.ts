// Every command, in the order --help lists them. Each module exports register(program).
import type { Command } from "commander";
import { register as init } from "./init.js";
import { register as join } from "./join.js";
import { register as apply } from "./apply.js";
import { register as reset } from "./reset.js";
import { register as up } from "./up.js";
import { register as delete_ } from "./delete.js";
import { register as lifecycle } from "./lifecycle.js";
import { register as status } from "./status.js";
import { register as preflight } from "./preflight.js";
import { register as certs } from "./certs.js";
import { register as token } from "./token.js";
import { register as etcd } from "./etcd.js";
import { register as kubeconfig } from "./kubeconfig.js";
import { register as node } from "./node.js";
import { register as ssh } from "./ssh.js";
import { register as image } from "./image.js";
import { register as addons } from "./addons.js";
import { register as config } from "./config.js";
import { register as completion } from "./completion.js";

export const COMMANDS: Array<(program: Command) => void> = [
  init, join, apply, reset, up, lifecycle, delete_, status, preflight, certs, token, etcd, kubeconfig, node, ssh, image, addons, config, completion,
];
