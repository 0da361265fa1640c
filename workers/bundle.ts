// Bundles the workflow code with webpack into the file named by the first
// argument. workflowBundle() runs this in a child process, so webpack's
// memory (some 120 MB that V8 keeps once grown) is not the worker's for its
// whole life.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

const output = process.argv[2];
if (output) {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: undefined });
  writeFileSync(output, code);
}
