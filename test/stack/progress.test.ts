// Progress inside one large blob: while a 300 MB layer streams into
// southeastasia, /v1/status (and so `ferry wait`, which reads the same rows)
// shows the region copying with bytes part-way through that layer, not a jump
// from 0 to 100 % when the blob lands.
import { afterAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { bearer, localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { skopeoCopy } from '../support/registry';

const config = localConfig();
const api = `http://${config.ingest.host}:${config.ingest.port}`;
const collectors: MessageCollector<never>[] = [];
afterAll(() => Promise.all(collectors.map((collector) => collector.stop())));

interface RegionView {
  state: string;
  bytesDone: number;
  bytesTotal: number | null;
}

describe('progress of a large layer', () => {
  it('shows bytes moving within the blob while it streams, then the whole image replicated', async () => {
    const repository = parseRepositoryName(uniqueRepository('progress'));
    const image = await buildImage({ layers: [{ size: 300_000_000 }], tag: 'v1' });
    const layerBytes = image.layers[0]!.size;
    const outcome = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(image.manifestDigest)));
    collectors.push(outcome as MessageCollector<never>);
    const observed: RegionView[] = [];
    let done = false;
    const polling = (async () => {
      while (!done) {
        const response = await fetch(`${api}/v1/status?repository=${repository}&digest=${image.manifestDigest}`, { headers: bearer(config, 'reader') });
        if (response.status === 200) observed.push(((await response.json()) as { regions: Record<string, RegionView> }).regions.southeastasia!);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    try {
      await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:v1`);
      await outcome.waitFor(1, 120_000);
    } finally {
      done = true;
      await polling;
    }
    // Read once more after the outcome: the poll's last answer may predate it.
    const final = await fetch(`${api}/v1/status?repository=${repository}&digest=${image.manifestDigest}`, { headers: bearer(config, 'reader') });
    observed.push(((await final.json()) as { regions: Record<string, RegionView> }).regions.southeastasia!);
    const total = observed.at(-1)!.bytesTotal!;
    expect(total).toBeGreaterThan(layerBytes);
    const configBytes = total - layerBytes;
    // Part-way through the layer: more than the config alone, less than the whole.
    const within = observed.filter((view) => view.state === 'copying' && view.bytesDone > configBytes && view.bytesDone < total);
    console.log(`southeastasia while streaming ${layerBytes} bytes: ${within.map((view) => view.bytesDone).join(', ')}`);
    expect(within.length).toBeGreaterThan(0);
    const bytesSeen = observed.map((view) => view.bytesDone);
    expect(bytesSeen, 'never moves back').toEqual([...bytesSeen].sort((a, b) => a - b));
    expect(observed.at(-1)).toMatchObject({ state: 'replicated', bytesDone: total });
  });
});
