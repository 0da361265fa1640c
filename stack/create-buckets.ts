// Creates every configured region's bucket on its S3 endpoint, if missing,
// and the stack's own buckets: those of registry-API regions' registries,
// which Ferry's config does not name (stack/topology.ts). Called by
// stack/supervise.ts once the S3 servers answer; docker-compose.yml runs this
// file as a one-shot service (`tsx stack/create-buckets.ts`), the stack's own
// buckets given as JSON in FERRY_STACK_BUCKETS.
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../domain/config';

/** A bucket to create: where, and the variables holding the credentials to create it with. */
export interface StackBucket {
  endpoint: string;
  bucket: string;
  accessKeyIdEnv: string;
  secretAccessKeyEnv: string;
  signingRegion?: string;
}

type Env = Record<string, string | undefined>;

function credential(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set (stack/local.env sets it for the local stack)`);
  return value;
}

async function ensureBucket(target: StackBucket, env: Env): Promise<'created' | 'exists'> {
  const s3 = new S3Client({
    endpoint: target.endpoint,
    region: target.signingRegion ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: credential(env, target.accessKeyIdEnv), secretAccessKey: credential(env, target.secretAccessKeyEnv) },
  });
  try {
    await s3.send(new HeadBucketCommand({ Bucket: target.bucket }));
    return 'exists';
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw error;
    await s3.send(new CreateBucketCommand({ Bucket: target.bucket }));
    return 'created';
  } finally {
    s3.destroy();
  }
}

/** FERRY_STACK_BUCKETS: a JSON array of StackBucket (docker-compose.yml's create-buckets). */
export function stackBucketsFromEnv(env: Env): StackBucket[] {
  const text = env.FERRY_STACK_BUCKETS;
  if (text === undefined || text.trim() === '') return [];
  const parsed = JSON.parse(text) as unknown;
  const valid = (entry: unknown): entry is StackBucket =>
    typeof entry === 'object' && entry !== null && ['endpoint', 'bucket', 'accessKeyIdEnv', 'secretAccessKeyEnv'].every((key) => typeof (entry as Record<string, unknown>)[key] === 'string');
  if (!Array.isArray(parsed) || !parsed.every(valid)) throw new Error('FERRY_STACK_BUCKETS: expected a JSON array of { endpoint, bucket, accessKeyIdEnv, secretAccessKeyEnv }');
  return parsed;
}

/** Ferry's configured buckets (the regions with storage), then `stackOnly`. */
export async function ensureBuckets(env: Env, log: (line: string) => void, stackOnly: StackBucket[] = []): Promise<void> {
  const configured = loadConfig(env).regions.flatMap((region): StackBucket[] =>
    region.s3 === null
      ? []
      : [{ endpoint: region.s3.endpoint, bucket: region.s3.bucket, accessKeyIdEnv: region.s3.accessKeyIdEnv, secretAccessKeyEnv: region.s3.secretAccessKeyEnv, signingRegion: region.s3.signingRegion }],
  );
  for (const target of [...configured, ...stackOnly]) {
    const outcome = await ensureBucket(target, env);
    log(`bucket ${target.bucket} on ${target.endpoint}: ${outcome}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await ensureBuckets(process.env, console.log, stackBucketsFromEnv(process.env));
