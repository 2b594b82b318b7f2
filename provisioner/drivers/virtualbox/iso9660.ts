// A small ISO 9660 image writer: one root directory of regular files, with a Joliet supplementary
// volume descriptor so that names such as "user-data" survive (ISO 9660 level 1 names are 8.3 upper
// case). Enough for a cloud-init NoCloud seed (label "cidata"); no subdirectories, no Rock Ridge.
// Written here because no ISO tool (genisoimage, xorriso, mkisofs, cloud-localds) can be assumed on
// the user's machine. Pure: files in, image bytes out.
//
// Layout, in 2048-byte sectors: 0-15 system area (zeros), 16 primary volume descriptor, 17 Joliet
// supplementary volume descriptor, 18 terminator, 19-22 the four path tables (L and M for each
// tree), 23 primary root directory, 24 Joliet root directory, 25... file data.

const SECTOR = 2048;

export interface IsoFile {
  /** The Joliet name (up to 64 characters), e.g. "user-data". */
  name: string;
  data: Buffer;
}

export interface IsoOptions {
  /** Volume label (cloud-init's NoCloud looks for "cidata"). */
  volumeId: string;
  /** Recorded as every date in the image; fixed by default so the same input gives the same bytes. */
  date?: Date;
}

function both16(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(n, 0);
  b.writeUInt16BE(n, 2);
  return b;
}

function both32(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n, 0);
  b.writeUInt32BE(n, 4);
  return b;
}

/** 7-byte directory record date (years since 1900, month, day, hour, minute, second, GMT offset 0). */
function recordDate(d: Date): Buffer {
  return Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
}

/** 17-byte volume descriptor date: "YYYYMMDDHHMMSScc" in ASCII digits and a GMT offset byte. */
function volumeDate(d: Date): Buffer {
  const p = (n: number, w: number) => String(n).padStart(w, "0");
  const s = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1, 2)}${p(d.getUTCDate(), 2)}${p(d.getUTCHours(), 2)}${p(d.getUTCMinutes(), 2)}${p(d.getUTCSeconds(), 2)}00`;
  return Buffer.concat([Buffer.from(s, "ascii"), Buffer.from([0])]);
}

function dirRecord(name: Buffer, lba: number, size: number, isDir: boolean, date: Date): Buffer {
  const len = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(len);
  r[0] = len;
  r[1] = 0;
  both32(lba).copy(r, 2);
  both32(size).copy(r, 10);
  recordDate(date).copy(r, 18);
  r[25] = isDir ? 2 : 0;
  both16(1).copy(r, 28);
  r[32] = name.length;
  name.copy(r, 33);
  return r;
}

/** The one-entry path table of a tree whose only directory is the root. */
function pathTable(rootLba: number, bigEndian: boolean): Buffer {
  const t = Buffer.alloc(10);
  t[0] = 1;
  if (bigEndian) t.writeUInt32BE(rootLba, 2);
  else t.writeUInt32LE(rootLba, 2);
  if (bigEndian) t.writeUInt16BE(1, 6);
  else t.writeUInt16LE(1, 6);
  return t;
}

function ucs2be(s: string): Buffer {
  const b = Buffer.from(s, "utf16le");
  b.swap16();
  return b;
}

/** A text field of a volume descriptor: ASCII padded with spaces, or UCS-2BE padded with UCS-2 spaces. */
function textField(s: string, width: number, joliet: boolean): Buffer {
  const out = Buffer.alloc(width, 0x20);
  if (joliet) {
    for (let i = 0; i + 1 < width; i += 2) out[i] = 0x00;
    ucs2be(s).copy(out, 0, 0, Math.min(width - (width % 2), s.length * 2));
  } else {
    Buffer.from(s, "ascii").copy(out, 0, 0, width);
  }
  return out;
}

/** The primary tree's name for a file: ISO 9660 level 1, "NAME.EXT;1" with d-characters only. */
export function level1Name(name: string, taken: Set<string>): string {
  const clean = (s: string) => s.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
  const dot = name.lastIndexOf(".");
  const stem = clean(dot > 0 ? name.slice(0, dot) : name);
  const ext = clean(dot > 0 ? name.slice(dot + 1) : "").slice(0, 3);
  for (let i = 0; ; i++) {
    const suffix = i === 0 ? "" : String(i);
    const candidate = `${stem.slice(0, 8 - suffix.length)}${suffix}.${ext};1`;
    if (!taken.has(candidate)) {
      taken.add(candidate);
      return candidate;
    }
  }
}

function volumeDescriptor(type: 1 | 2, o: { volumeId: string; sectors: number; lPath: number; mPath: number; root: Buffer; date: Date }): Buffer {
  const joliet = type === 2;
  const d = Buffer.alloc(SECTOR);
  d[0] = type;
  d.write("CD001", 1, "ascii");
  d[6] = 1;
  textField("", 32, joliet).copy(d, 8); // system identifier
  textField(o.volumeId, 32, joliet).copy(d, 40);
  both32(o.sectors).copy(d, 80);
  if (joliet) Buffer.from("%/E", "ascii").copy(d, 88); // UCS-2 level 3
  both16(1).copy(d, 120); // volume set size
  both16(1).copy(d, 124); // volume sequence number
  both16(SECTOR).copy(d, 128);
  both32(10).copy(d, 132); // path table size
  d.writeUInt32LE(o.lPath, 140);
  d.writeUInt32BE(o.mPath, 148);
  o.root.copy(d, 156);
  for (const [off, width] of [[190, 128], [318, 128], [446, 128], [574, 128], [702, 37], [739, 37], [776, 37]] as const) textField("", width, joliet).copy(d, off);
  volumeDate(o.date).copy(d, 813); // creation
  volumeDate(o.date).copy(d, 830); // modification
  Buffer.from("0000000000000000\0", "ascii").copy(d, 847); // expiration: none
  Buffer.from("0000000000000000\0", "ascii").copy(d, 864); // effective: none
  d[881] = 1;
  return d;
}

export function buildIso(files: IsoFile[], opts: IsoOptions): Buffer {
  const date = opts.date ?? new Date(Date.UTC(2000, 0, 1));
  const PVD = 16, SVD = 17, TERM = 18, L1 = 19, M1 = 20, L2 = 21, M2 = 22, ROOT1 = 23, ROOT2 = 24, DATA = 25;
  let lba = DATA;
  const taken = new Set<string>();
  const placed = files.map((f) => {
    if (f.name.length > 64) throw new Error(`ISO file name too long: ${f.name}`);
    const p = { ...f, lba, primary: level1Name(f.name, taken) };
    lba += Math.max(1, Math.ceil(f.data.length / SECTOR));
    return p;
  });
  const sectors = lba;

  const directory = (rootLba: number, names: Array<{ name: Buffer; lba: number; size: number }>): Buffer => {
    const dot = dirRecord(Buffer.from([0]), rootLba, SECTOR, true, date);
    const dotdot = dirRecord(Buffer.from([1]), rootLba, SECTOR, true, date);
    // Records sorted by name, as ISO 9660 requires; all must fit in the directory's one sector.
    const recs = names.sort((a, b) => Buffer.compare(a.name, b.name)).map((n) => dirRecord(n.name, n.lba, n.size, false, date));
    const body = Buffer.concat([dot, dotdot, ...recs]);
    if (body.length > SECTOR) throw new Error("too many files for a one-sector ISO directory");
    return Buffer.concat([body, Buffer.alloc(SECTOR - body.length)]);
  };
  const primaryDir = directory(ROOT1, placed.map((p) => ({ name: Buffer.from(p.primary, "ascii"), lba: p.lba, size: p.data.length })));
  const jolietDir = directory(ROOT2, placed.map((p) => ({ name: ucs2be(p.name), lba: p.lba, size: p.data.length })));

  const image = Buffer.alloc(sectors * SECTOR);
  volumeDescriptor(1, { volumeId: opts.volumeId, sectors, lPath: L1, mPath: M1, root: dirRecord(Buffer.from([0]), ROOT1, SECTOR, true, date), date }).copy(image, PVD * SECTOR);
  volumeDescriptor(2, { volumeId: opts.volumeId, sectors, lPath: L2, mPath: M2, root: dirRecord(Buffer.from([0]), ROOT2, SECTOR, true, date), date }).copy(image, SVD * SECTOR);
  image[TERM * SECTOR] = 255;
  image.write("CD001", TERM * SECTOR + 1, "ascii");
  image[TERM * SECTOR + 6] = 1;
  pathTable(ROOT1, false).copy(image, L1 * SECTOR);
  pathTable(ROOT1, true).copy(image, M1 * SECTOR);
  pathTable(ROOT2, false).copy(image, L2 * SECTOR);
  pathTable(ROOT2, true).copy(image, M2 * SECTOR);
  primaryDir.copy(image, ROOT1 * SECTOR);
  jolietDir.copy(image, ROOT2 * SECTOR);
  for (const p of placed) p.data.copy(image, p.lba * SECTOR);
  return image;
}
