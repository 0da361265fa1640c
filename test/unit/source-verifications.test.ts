// One read of a source blob authorises every region's copy of it in this
// worker: a verification in flight is waited for, a failed one is forgotten.
import { describe, expect, it } from 'vitest';
import { SourceVerifications } from '../../activities/source-verifications';

const DIGEST = 'sha256:3490ab910a421572adaa14d2961176f3eb03fab029f77e41e160a2dd8d74747b';

describe('SourceVerifications', () => {
  it('knows nothing of a blob no copy read', async () => {
    expect(await new SourceVerifications().lookup('eastus', DIGEST)).toBeNull();
  });

  it('makes a lookup wait for the read in flight, then answers its ETag', async () => {
    const verifications = new SourceVerifications();
    const reading = verifications.begin('eastus', DIGEST);
    const waiting = verifications.lookup('eastus', DIGEST);
    reading.verified('"etag-1"');
    expect(await waiting).toBe('"etag-1"');
    expect(await verifications.lookup('eastus', DIGEST)).toBe('"etag-1"');
    expect(await verifications.lookup('westeurope', DIGEST), 'per source region').toBeNull();
  });

  it('forgets a read that ended without a verdict, and abandoned after verified changes nothing', async () => {
    const verifications = new SourceVerifications();
    const failing = verifications.begin('eastus', DIGEST);
    const waiting = verifications.lookup('eastus', DIGEST);
    failing.abandoned();
    expect(await waiting).toBeNull();
    expect(verifications.has('eastus', DIGEST)).toBe(false);

    const reading = verifications.begin('eastus', DIGEST);
    reading.verified('"etag-2"');
    reading.abandoned();
    expect(await verifications.lookup('eastus', DIGEST)).toBe('"etag-2"');
  });

  it('forgets an ETag the source no longer holds', async () => {
    const verifications = new SourceVerifications();
    verifications.begin('eastus', DIGEST).verified('"etag-3"');
    verifications.forget('eastus', DIGEST);
    expect(await verifications.lookup('eastus', DIGEST)).toBeNull();
  });

  it('keeps at most its capacity, dropping the oldest', async () => {
    const verifications = new SourceVerifications(2);
    for (const digest of ['sha256:a', 'sha256:b', 'sha256:c']) verifications.begin('eastus', digest).verified(`"${digest}"`);
    expect(verifications.has('eastus', 'sha256:a')).toBe(false);
    expect(await verifications.lookup('eastus', 'sha256:c')).toBe('"sha256:c"');
  });
});
