// Creates every configured region's bucket on its S3 endpoint, if missing.
// Called by stack/supervise.ts once the S3 servers answer; docker-compose.yml
// runs this file as a one-shot service (`tsx stack/create-buckets.ts`).
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type RegionConfig } from '../domain/config';

async function ensureBucket(region: RegionConfig): Promise<'created' | 'exists'> {
  const s3 = new S3Client({
    endpoint: region.s3.endpoint,
    region: region.s3.signingRegion,
    forcePathStyle: true,
    credentials: region.s3.credentials ?? undefined,
  });
  try {
    await s3.send(new HeadBucketCommand({ Bucket: region.s3.bucket }));
    return 'exists';
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw error;
    await s3.send(new CreateBucketCommand({ Bucket: region.s3.bucket }));
    return 'created';
  } finally {
    s3.destroy();
  }
}

export async function ensureBuckets(env: Record<string, string | undefined>, log: (line: string) => void): Promise<void> {
  for (const region of loadConfig(env).regions) {
    const outcome = await ensureBucket(region);
    log(`bucket ${region.s3.bucket} on ${region.s3.endpoint}: ${outcome}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await ensureBuckets(process.env, console.log);
