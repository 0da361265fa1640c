// The README's layout table is how a newcomer finds their way: every folder
// of the tree is in it, and every file it names exists where it says.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const table = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));
const rows = table
  .split('\n')
  .filter((line) => line.startsWith('| `'))
  .map((line) => {
    const [, paths = '', what = ''] = line.split('|');
    return { folders: [...paths.matchAll(/`([^`]+)`/g)].map((match) => match[1]!.replace(/\/$/, '')), what };
  });
const IGNORED = new Set(['node_modules', '.git', '.stack', '.ci', 'test']);

describe('the README layout table', () => {
  it('lists every top-level folder of the tree', () => {
    const folders = readdirSync(root).filter((name) => !IGNORED.has(name) && !name.startsWith('.') && statSync(new URL(name, root)).isDirectory());
    const listed = new Set(rows.flatMap((row) => row.folders));
    expect(folders.filter((folder) => !listed.has(folder))).toEqual([]);
  });

  it('names only files that exist in the folder of their row', () => {
    const missing: string[] = [];
    for (const row of rows) {
      for (const [, file] of row.what.matchAll(/`([\w.-]+\.(?:ts|sql))`/g)) {
        if (!row.folders.some((folder) => existsSync(new URL(`${folder}/${file}`, root)))) missing.push(`${row.folders.join(', ')}: ${file}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('names only test files that exist, wherever in the README', () => {
    const named = [...new Set([...readme.matchAll(/test\/(?:unit|stack)\/[\w.-]+\.test\.ts/g)].map((match) => match[0]))];
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((path) => !existsSync(new URL(path, root)))).toEqual([]);
  });
});
