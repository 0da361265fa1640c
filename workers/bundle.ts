// The workflow bundle, built once and loaded by path. `npm run build:workflows`
// (also run by `stack/stack.sh install`) writes it to .build/ with a
// fingerprint of the sources it was built from; a worker loads it when the
// fingerprint still matches, and otherwise rebuilds it first, in a child
// process (webpack's memory, some 120 MB that V8 keeps once grown, is then
// not the worker's for its whole life), so it never runs stale workflow code.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../', import.meta.url));
const workflowsPath = join(root, 'workflows/index.ts');
export const WORKFLOW_BUNDLE_PATH = join(root, '.build/workflows.js');
const FINGERPRINT_PATH = join(root, '.build/workflows.sha256');

/** Every file webpack may pull into the bundle: the workflows, the domain they import, and the locked SDK version. */
export function sourcesFingerprint(): string {
  const hash = createHash('sha256');
  const files = ['workflows', 'domain']
    .flatMap((folder) => readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' }).map((name) => join(folder, name)))
    .filter((name) => name.endsWith('.ts'))
    .sort();
  for (const name of [...files, 'package-lock.json']) hash.update(`${name}\0`).update(readFileSync(join(root, name)));
  return hash.digest('hex');
}

function builtFingerprint(): string | null {
  try {
    return readFileSync(FINGERPRINT_PATH, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Bundles the workflow code with webpack, here; written atomically with the fingerprint of its sources. */
async function build(): Promise<void> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const fingerprint = sourcesFingerprint();
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: undefined });
  mkdirSync(join(root, '.build'), { recursive: true });
  const staging = `${WORKFLOW_BUNDLE_PATH}.${process.pid}`;
  writeFileSync(staging, code);
  renameSync(staging, WORKFLOW_BUNDLE_PATH);
  writeFileSync(FINGERPRINT_PATH, `${fingerprint}\n`);
}

/** The bundle's path, rebuilt first (in a child process) when the sources changed since it was built. */
export async function workflowBundlePath(onRebuild: () => void = () => undefined): Promise<string> {
  if (builtFingerprint() !== sourcesFingerprint()) {
    onRebuild();
    await promisify(execFile)(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), 'build']);
  }
  return WORKFLOW_BUNDLE_PATH;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'build') {
  if (builtFingerprint() === sourcesFingerprint()) console.log(`workflow bundle up to date: ${WORKFLOW_BUNDLE_PATH}`);
  else await build();
}
