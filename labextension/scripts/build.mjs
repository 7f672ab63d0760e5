// Builds the prebuilt labextension into trenv/lab/labextension (package.json "outputDir")
// with the standard JupyterLab builder, then stamps it with the digest of its sources.
// The built assets are committed: the notebook image is built offline from trenv's wheel
// and must not need node. tests/lab_ext/test_labextension_assets.py recomputes the digest
// so a source change without a rebuild fails the tests (docs/lab.md, "Building").
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceDigest, SOURCES_STAMP } from './sources.mjs';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(here, 'package.json'));
const run = (script, ...args) =>
  execFileSync(process.execPath, [require.resolve(script), ...args], { stdio: 'inherit', cwd: here });
// TypeScript to lib/, then the builder bundles lib/ against the core's shared packages
// (the JupyterLab version pinned by @jupyterlab/core-meta in package.json).
run('typescript/bin/tsc', '-p', here);
const core = require.resolve('@jupyterlab/core-meta/core.package.json');
run('@jupyter/builder/lib/build-labextension.js', '--core-package-file', core, here);

const pkg = JSON.parse((await import('node:fs')).readFileSync(join(here, 'package.json'), 'utf8'));
const out = join(here, pkg.jupyterlab.outputDir, SOURCES_STAMP);
writeFileSync(out, JSON.stringify({ sha256: sourceDigest(here) }, null, 1) + '\n');
console.log(`stamped ${out}`);
