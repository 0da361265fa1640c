// Durations as operators type and read them: `90s`, `10m`, `1h30m`, `2d`; the
// same in `ferry stuck --older-than`, `ferry wait --timeout` and the admin api.

const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest duration anyone means: ten years. Beyond it no date can be computed from now. */
const MAX_DAYS = 3650;

/** Milliseconds of a duration written like `90s`, `10m`, `1h` or `1h30m`, up to ten years. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+[smhd])+$/.test(trimmed)) {
    throw new Error(`"${text}" is not a duration: write a number and a unit (s, m, h, d), e.g. 90s, 10m, 1h or 1h30m`);
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhd])/g)) total += Number(amount) * units[unit!]!;
  if (!(total <= MAX_DAYS * units.d!)) throw new Error(`"${text}" is longer than ${MAX_DAYS} days`);
  return total;
}

/** `1h 2m`, `12m 5s`, `40s`: the two largest units, for ages an operator reads. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const parts: Array<[number, string]> = [
    [Math.floor(seconds / 86_400), 'd'],
    [Math.floor(seconds / 3_600) % 24, 'h'],
    [Math.floor(seconds / 60) % 60, 'm'],
    [seconds % 60, 's'],
  ];
  const first = parts.findIndex(([amount]) => amount > 0);
  if (first === -1) return '0s';
  return parts
    .slice(first, first + 2)
    .filter(([amount]) => amount > 0)
    .map(([amount, unit]) => `${amount}${unit}`)
    .join(' ');
}
