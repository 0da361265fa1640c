// The environment every Ferry process of the stack tests runs with:
// stack/local.env (throwaway credentials for loopback servers), the caller's
// env, and FERRY_CONFIG pointing at a configuration whose database the global
// setup creates fresh for each run.
import { localEnv } from '../../support/local-env';

export const repoRoot = new URL('../../', import.meta.url).pathname;

/** The configuration file of a test run: the local stack, with its own database. */
export const testConfigPath = `${repoRoot}.stack/run/test-config.json`;
export const TEST_DATABASE = 'ferry_test';
/** A read token of the test run (auth.tokensFile) that covers only repositories under SCOPED_PREFIX. */
export const SCOPED_TOKEN = 'team-scoped';
export const SCOPED_PREFIX = 'it-team-scoped';
/** The run's ingest.waits.maxWaitsPerToken: small, so a test can reach it. */
export const WAITS_PER_TOKEN = 25;
/** The run's reconcile.pageSize and pagesPerRun: small, so a reconcile of a few tags pages and continues as new. */
export const PLAN_PAGE_SIZE = 3;
export const PLAN_PAGES_PER_RUN = 2;
/**
 * The run's replication rules (config `rules`), on prefixes no other test
 * uses: the sandbox is kept out of southeastasia; release tags of prod go to
 * westeurope only, its other tags everywhere; the far prefix goes to
 * southeastasia only (test/stack/limits.test.ts); the API prefix goes
 * everywhere; the rest everywhere but the registry-API region.
 */
export const RULES_SANDBOX = 'it-rules-sandbox';
export const RULES_PROD = 'it-rules-prod';
export const RULES_FAR_ONLY = 'it-rules-far';
/** The only repositories the run replicates into centralus, the registry-API region (test/stack/registry-api-region.test.ts). */
export const API_REGION = 'centralus';
export const API_PREFIX = 'it-api';
export const TEST_RULES = [
  { repository: `${RULES_SANDBOX}/**`, exclude: ['southeastasia', API_REGION] },
  { repository: `${RULES_PROD}/**`, tag: 'v[0-9]+', regions: ['westeurope'] },
  { repository: `${RULES_FAR_ONLY}/**`, regions: ['southeastasia'] },
  { repository: `${API_PREFIX}/**`, regions: ['eastus', 'westeurope', 'southeastasia', API_REGION] },
  // Every other test replicates among the three storage regions, as it did before centralus.
  { repository: '**', exclude: [API_REGION] },
];

export function localStackEnv(): Record<string, string> {
  return { ...localEnv(), ...(process.env as Record<string, string>), FERRY_CONFIG: testConfigPath };
}
