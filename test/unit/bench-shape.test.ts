import { describe, expect, it } from 'vitest';
import { distinctLayers, parseBytes, parseLayers, planImages, scenarioByName } from '../../bench/shape';

describe('bench image set shapes', () => {
  it('reads sizes in decimal and binary units', () => {
    expect(parseBytes('64KiB')).toBe(65536);
    expect(parseBytes('200MB')).toBe(200_000_000);
    expect(parseBytes('1GiB')).toBe(1024 ** 3);
    expect(parseBytes('1.5 MiB')).toBe(1.5 * 1024 ** 2);
    expect(parseBytes('4096')).toBe(4096);
    expect(() => parseBytes('12 parsecs')).toThrow(/not a size/);
  });

  it('reads a layer list of size:shared pairs, unique when the share is left out', () => {
    expect(parseLayers('2MiB:100,512KiB:10,64KiB')).toEqual([
      { bytes: 2 * 1024 ** 2, sharedBy: 100 },
      { bytes: 512 * 1024, sharedBy: 10 },
      { bytes: 64 * 1024, sharedBy: 1 },
    ]);
    expect(() => parseLayers('1MiB:0')).toThrow(/positive integer/);
  });

  it('gives runs of `sharedBy` images the same base layer and every image its own top layer', () => {
    const images = planImages('demo', { images: 5, layers: [{ bytes: 10, sharedBy: 2 }, { bytes: 1, sharedBy: 1 }] });
    const bases = images.map((image) => image.layers[0]!.seed);
    expect(bases[0]).toBe(bases[1]);
    expect(bases[1]).not.toBe(bases[2]);
    expect(bases[2]).toBe(bases[3]);
    expect(new Set(images.map((image) => image.layers[1]!.seed)).size).toBe(5);
    expect(distinctLayers(images)).toHaveLength(3 + 5);
  });

  it('plans the same layers for the same shape, so digests repeat across runs', () => {
    const shape = scenarioByName('shared-base').shape;
    expect(planImages('shared-base', shape)).toEqual(planImages('shared-base', shape));
    expect(distinctLayers(planImages('shared-base', shape))).toHaveLength(1 + 50);
  });

  it('names the scenarios of issue 6 and refuses others', () => {
    expect(scenarioByName('large').shape).toEqual({ images: 3, layers: [{ bytes: 1024 ** 3, sharedBy: 1 }] });
    expect(scenarioByName('many-small').shape.images).toBe(500);
    expect(scenarioByName('many-small-drain')).toMatchObject({ shape: scenarioByName('many-small').shape, notifications: 'after-push' });
    expect(() => scenarioByName('huge')).toThrow(/unknown scenario "huge"/);
  });
});
