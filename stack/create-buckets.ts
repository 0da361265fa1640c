// Creates every configured region's bucket on its S3 endpoint, if missing.
// Run by stack/stack.sh after the S3 servers answer, with stack/local.env exported.
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type RegionConfig } from '../domain/config';

async function ensureBucket(region: RegionConfig): Promise<'created' | 'exists'> {
  const s3 = new S3Client({
    endpoint: region.s3.endpoint,
    region: region.s3.signingRegion,
    forcePathStyle: true,
    credentials: region.s3.credentials,
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

for (const region of loadConfig().regions) {
  const outcome = await ensureBucket(region);
  console.log(`bucket ${region.s3.bucket} on ${region.s3.endpoint}: ${outcome}`);
}
