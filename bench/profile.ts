// With --profile, Ferry's processes run under `node --cpu-prof` and write a
// V8 CPU profile when they stop; this turns one into the table of where the
// CPU went (self time by function), which is what says why a target is missed.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface HotFunction {
  name: string;
  /** Share of all samples (idle included) spent in this function itself. */
  selfShare: number;
  selfSeconds: number;
}

function label(node: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/^file:\/\//, '').replace(root, '');
  return `${functionName || '(anonymous)'}${where ? ` ${where}:${lineNumber + 1}` : ''}`;
}

/** The `limit` functions with the most self time; paths shown relative to `root`. */
export function hottestFunctions(profile: CpuProfile, root: string, limit = 15): HotFunction[] {
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const byName = new Map<string, number>();
  for (const node of profile.nodes) {
    const name = label(node, root);
    byName.set(name, (byName.get(name) ?? 0) + (node.hitCount ?? 0));
  }
  return [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, hits]) => ({ name, selfShare: hits / total, selfSeconds: (hits / total) * seconds }));
}

export function profileTable(role: string, hot: HotFunction[]): string {
  const rows = hot.map((entry) => `| ${entry.name.replaceAll('|', '\\|')} | ${(entry.selfShare * 100).toFixed(1)}% | ${entry.selfSeconds.toFixed(2)} s |`);
  return [`### ${role}: self time by function`, '', '| function | share of samples | seconds |', '| --- | --- | --- |', ...rows, ''].join('\n');
}
