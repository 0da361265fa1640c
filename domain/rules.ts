// Replication rules (config `rules`): which regions a change of a repository
// and tag is replicated into. Ordered; the first rule that matches decides,
// and a change no rule matches goes everywhere (its target regions' `sources`
// still apply). A rule names either the only regions it replicates into
// (`regions`) or the ones it keeps out (`exclude`).
//
//   { "repository": "sandbox/**", "exclude": ["southeastasia"] }
//   { "repository": "prod/*", "tag": "v[0-9]+(\\.[0-9]+)*", "regions": ["westeurope"] }
//
// `repository` is a glob over the whole name: `*` matches within one path
// component, `**` across components. `tag` is a regular expression the whole
// tag must match; a rule with one never matches a change without a tag (a
// delete by digest), which falls to the next rule.

export interface ReplicationRule {
  repository: string;
  tag?: string;
  regions?: string[];
  exclude?: string[];
}

export class RuleError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'RuleError';
  }
}

interface CompiledRule {
  repository: RegExp;
  tag: RegExp | null;
  keep: (region: string) => boolean;
}

const GLOB = /^[a-z0-9*][a-z0-9*._/-]*$/;

function globPattern(glob: string): RegExp {
  const source = glob
    .split('**')
    .map((part) => part.split('*').map((literal) => literal.replace(/[.]/g, '\\.')).join('[^/]*'))
    .join('.*');
  return new RegExp(`^${source}$`);
}

/** Compiles one rule, or throws RuleError naming the field at fault. */
export function compileRule(rule: ReplicationRule, regions: readonly string[]): CompiledRule {
  if (!GLOB.test(rule.repository)) {
    throw new RuleError('repository', `"${rule.repository}" is not a repository glob: lowercase name characters, / and * (** across components)`);
  }
  let tag: RegExp | null = null;
  if (rule.tag !== undefined) {
    try {
      tag = new RegExp(`^(?:${rule.tag})$`);
    } catch (error) {
      throw new RuleError('tag', `"${rule.tag}" is not a regular expression: ${(error as Error).message}`);
    }
  }
  if ((rule.regions === undefined) === (rule.exclude === undefined)) {
    throw new RuleError('regions', 'name either the regions to replicate into (regions) or the ones to keep out (exclude)');
  }
  const named = rule.regions ?? rule.exclude!;
  const field = rule.regions === undefined ? 'exclude' : 'regions';
  named.forEach((region, index) => {
    if (!regions.includes(region)) throw new RuleError(`${field}.${index}`, `"${region}" is not a configured region`);
  });
  const keep = rule.regions === undefined ? (region: string) => !named.includes(region) : (region: string) => named.includes(region);
  return { repository: globPattern(rule.repository), tag, keep };
}

const compiled = new WeakMap<readonly ReplicationRule[], CompiledRule[]>();

/**
 * Whether the rules let a change of `repository` and `tag` (null: by digest)
 * into `region`. The first matching rule decides; none matching lets it in.
 */
export function ruleAdmits(rules: readonly ReplicationRule[], regions: readonly string[], change: { repository: string; tag: string | null }, region: string): boolean {
  let list = compiled.get(rules);
  if (list === undefined) {
    list = rules.map((rule) => compileRule(rule, regions));
    compiled.set(rules, list);
  }
  const rule = list.find((candidate) => candidate.repository.test(change.repository) && (candidate.tag === null ? true : change.tag !== null && candidate.tag.test(change.tag)));
  return rule === undefined || rule.keep(region);
}
