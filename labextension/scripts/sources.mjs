// The digest of everything the labextension is built from. Mirrored in Python by
// tests/lab_ext/test_labextension_assets.py (it compares the two): keep them in step.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export const SOURCES_STAMP = 'trenv-sources.json';
const ROOTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'style'];

function files(root, path) {
  const full = join(root, path);
  if (statSync(full).isDirectory()) {
    return readdirSync(full).sort().flatMap(name => files(root, join(path, name)));
  }
  return [path];
}

export function sourceDigest(root) {
  const hash = createHash('sha256');
  for (const path of ROOTS.flatMap(p => files(root, p)).sort()) {
    const name = relative(root, join(root, path)).split(sep).join('/');
    const data = readFileSync(join(root, path));
    // name, NUL, length, NUL, bytes: no two different trees give the same stream.
    hash.update(`${name}\0${data.length}\0`);
    hash.update(data);
  }
  return hash.digest('hex');
}
