// The workflow bundle is built once and loaded by path, and never stale: a
// worker finding a bundle built from other sources rebuilds it first.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sourcesFingerprint, WORKFLOW_BUNDLE_PATH, workflowBundlePath } from '../../workers/bundle';

const fingerprintFile = WORKFLOW_BUNDLE_PATH.replace(/\.js$/, '.sha256');

describe('the workflow bundle', () => {
  it('is rebuilt when it was built from other sources, then loaded as it is', { timeout: 60_000 }, async () => {
    await workflowBundlePath();
    writeFileSync(fingerprintFile, `${'0'.repeat(64)}\n`);
    let rebuilds = 0;
    const path = await workflowBundlePath(() => rebuilds++);
    expect(rebuilds).toBe(1);
    expect(readFileSync(fingerprintFile, 'utf8').trim()).toBe(sourcesFingerprint());
    expect(readFileSync(path, 'utf8')).toContain('replicateChange');
    await workflowBundlePath(() => rebuilds++);
    expect(rebuilds).toBe(1);
  });
});
