import { RuntimeFailure } from "../errors.js";

/** For commands a later issue fills: exit 1 with a clear message. */
export function notImplemented(what: string): never {
  throw new RuntimeFailure(`\`kubeprov ${what}\` is not implemented yet`);
}
