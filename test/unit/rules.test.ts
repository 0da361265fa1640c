// Replication rules: the first matching rule decides a change's regions.
import { describe, expect, it } from 'vitest';
import { ConfigError, LOCAL_REGIONS, replicatesInto, resolveConfig } from '../../domain/config';
import { compileRule, RuleError, ruleAdmits, type ReplicationRule } from '../../domain/rules';

const REGIONS = ['eastus', 'westeurope', 'southeastasia'];
const rules: ReplicationRule[] = [
  { repository: 'sandbox/**', exclude: ['southeastasia'] },
  { repository: 'prod/*', tag: 'v[0-9]+(\\.[0-9]+)*', regions: ['westeurope'] },
  { repository: 'prod/*', regions: ['westeurope', 'southeastasia'] },
];
const into = (repository: string, tag: string | null) => REGIONS.filter((region) => ruleAdmits(rules, REGIONS, { repository, tag }, region));

describe('replication rules', () => {
  it('lets the first matching rule decide, and lets everything else go everywhere', () => {
    expect(into('sandbox/a/b', 'latest')).toEqual(['eastus', 'westeurope']);
    expect(into('prod/api', 'v1.2')).toEqual(['westeurope']);
    // The tag rule does not match "latest" (the whole tag must match), nor a change by digest: the next rule decides.
    expect(into('prod/api', 'latest')).toEqual(['westeurope', 'southeastasia']);
    expect(into('prod/api', 'v1.2-rc')).toEqual(['westeurope', 'southeastasia']);
    expect(into('prod/api', null)).toEqual(['westeurope', 'southeastasia']);
    // `*` stays within one path component; a name that only starts the same is another repository.
    expect(into('prod/api/worker', 'v1')).toEqual(REGIONS);
    expect(into('sandboxes/a', 'v1')).toEqual(REGIONS);
    expect(into('team-a/app', 'v1')).toEqual(REGIONS);
  });

  it('names the field of a bad rule', () => {
    const error = (rule: ReplicationRule) => {
      try {
        compileRule(rule, REGIONS);
      } catch (caught) {
        if (caught instanceof RuleError) return `${caught.field}: ${caught.message}`;
        throw caught;
      }
      return 'compiled';
    };
    expect(error({ repository: 'Prod/*', regions: ['eastus'] })).toMatch(/^repository: "Prod\/\*" is not a repository glob/);
    expect(error({ repository: 'prod/*', tag: 'v(', regions: ['eastus'] })).toMatch(/^tag: "v\(" is not a regular expression/);
    expect(error({ repository: 'prod/*', regions: ['eastus'], exclude: ['westeurope'] })).toMatch(/^regions: name either/);
    expect(error({ repository: 'prod/*' })).toMatch(/^regions: name either/);
    expect(error({ repository: 'prod/*', exclude: ['eastus', 'mars'] })).toBe('exclude.1: "mars" is not a configured region');
  });

  it('is validated with the configuration, every bad field named, and applied with the regions\' sources', () => {
    const env = {
      FERRY_S3_A_ACCESS_KEY_ID: 'a',
      FERRY_S3_A_SECRET_ACCESS_KEY: 'a',
      FERRY_S3_B_ACCESS_KEY_ID: 'b',
      FERRY_S3_B_SECRET_ACCESS_KEY: 'b',
      FERRY_REGISTRY_SOUTHEASTASIA_USERNAME: 'u',
      FERRY_REGISTRY_SOUTHEASTASIA_PASSWORD: 'p',
      FERRY_REGISTRY_CENTRALUS_USERNAME: 'u',
      FERRY_REGISTRY_CENTRALUS_PASSWORD: 'p',
    };
    try {
      resolveConfig({ rules: [{ repository: 'ok/**', exclude: ['mars'] }, { repository: 'x', tag: '[', regions: ['eastus'] }] }, env, { role: 'worker' });
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'rules.0.exclude.0: "mars" is not a configured region',
        expect.stringMatching(/^rules\.1\.tag: "\[" is not a regular expression/),
      ]);
    }
    const regions = LOCAL_REGIONS.map((region) => (region.name === 'westeurope' ? { ...region, sources: ['southeastasia'] } : region));
    const config = resolveConfig({ regions, rules: [{ repository: 'sandbox/**', exclude: ['southeastasia'] }] }, env, { role: 'worker' });
    const targets = (sourceRegion: string, repository: string) => REGIONS.filter((target) => replicatesInto(config, target, { sourceRegion, repository, tag: 'v1' }));
    expect(targets('eastus', 'sandbox/x')).toEqual([]);
    expect(targets('eastus', 'app')).toEqual(['southeastasia']);
    expect(targets('southeastasia', 'sandbox/x')).toEqual(['eastus', 'westeurope']);
  });
});
