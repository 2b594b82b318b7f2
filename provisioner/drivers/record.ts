// Which driver made a named cluster: `up` records it in clusterDir(NAME)/driver.json before it
// creates any machine, so `delete`, `stop`, `start`, `status` and `node` commands need no --driver
// (and `delete` still knows the driver when `up` failed half-way). Clusters made before the record
// existed are recognized by the header `up` writes into their cluster file.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { clusterDir } from "../paths.js";
import type { Driver } from "./driver.js";
import { DRIVERS, getDriver, type DriverName } from "./index.js";
import { clusterFiles, writeFileAtomic } from "./localfiles.js";

export interface DriverRecord {
  driver: DriverName;
  /** The OVA the virtualbox driver imports (kept so `up` and `node add` can make more nodes). */
  vboxImage?: string;
  /** The node address given to the none driver with --address (kept so later runs use it too). */
  address?: string;
}

export function driverRecordFile(cluster: string): string {
  return join(clusterDir(cluster), "driver.json");
}

function isDriverName(s: string): s is DriverName {
  return (DRIVERS as readonly string[]).includes(s);
}

/** The driver named in the header `up` writes into a cluster file (undefined if none is named). */
export function driverFromClusterFileHeader(clusterFileText: string): string | undefined {
  return /^# Written by `kubeprov up --name [^`]+` \(driver ([a-z]+)/m.exec(clusterFileText)?.[1];
}

/** What `up` recorded for the cluster: driver.json, else the cluster file's header; undefined when neither says. */
export function readDriverRecord(cluster: string): (DriverRecord & { source: string }) | undefined {
  const file = driverRecordFile(cluster);
  if (existsSync(file)) {
    let parsed: { driver?: unknown; vboxImage?: unknown; address?: unknown };
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw new UsageError(`${file}: not valid JSON (${(e as Error).message}); it records the driver cluster ${cluster} was made with`);
    }
    if (typeof parsed.driver !== "string" || !isDriverName(parsed.driver)) throw new UsageError(`${file}: driver ${JSON.stringify(parsed.driver)} is not one of ${DRIVERS.join(", ")}`);
    return {
      driver: parsed.driver,
      ...(typeof parsed.vboxImage === "string" ? { vboxImage: parsed.vboxImage } : {}),
      ...(typeof parsed.address === "string" ? { address: parsed.address } : {}),
      source: file,
    };
  }
  const clusterFile = clusterFiles(cluster).clusterFile;
  if (existsSync(clusterFile)) {
    const d = driverFromClusterFileHeader(readFileSync(clusterFile, "utf8"));
    if (d && isDriverName(d)) return { driver: d, source: clusterFile };
  }
  return undefined;
}

/** Records the driver (and its options worth keeping) for cluster NAME; rewritten only when it changes. */
export function writeDriverRecord(cluster: string, record: DriverRecord): void {
  const file = driverRecordFile(cluster);
  const text =
    JSON.stringify({ driver: record.driver, ...(record.vboxImage ? { vboxImage: resolve(record.vboxImage) } : {}), ...(record.address ? { address: record.address } : {}) }, null, 2) + "\n";
  if (existsSync(file) && readFileSync(file, "utf8") === text) return;
  mkdirSync(clusterDir(cluster), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, text, 0o600);
}

/**
 * The driver of named cluster NAME: the recorded one; an explicit --driver must agree with it (a
 * usage error, exit 2, naming both, otherwise). With nothing recorded (no such cluster, or its local
 * files are gone): the explicit one, else docker (whose machines are found by label alone).
 */
export function resolveClusterDriver(cluster: string, explicit?: string): { name: DriverName; record?: DriverRecord; from: "recorded" | "flag" | "default" } {
  if (explicit !== undefined && !isDriverName(explicit)) throw new UsageError(`--driver ${JSON.stringify(explicit)}: one of ${DRIVERS.join(", ")}`);
  const record = readDriverRecord(cluster);
  if (record) {
    if (explicit !== undefined && explicit !== record.driver)
      throw new UsageError(`--driver ${explicit}: cluster ${cluster} was made with the ${record.driver} driver (recorded in ${record.source}); drop --driver or give --driver ${record.driver}`);
    const { source: _s, ...rest } = record;
    return { name: record.driver, record: rest, from: "recorded" };
  }
  return explicit !== undefined ? { name: explicit as DriverName, from: "flag" } : { name: "docker", from: "default" };
}

/** The Driver object of named cluster NAME (resolveClusterDriver), with the recorded options. */
export function clusterDriver(cluster: string, explicit?: string, log?: (m: string) => void): Driver {
  const r = resolveClusterDriver(cluster, explicit);
  return getDriver(r.name, { log, vboxImage: r.record?.vboxImage, address: r.record?.address });
}
