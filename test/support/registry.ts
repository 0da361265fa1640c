// What a registry user does, for tests: push and pull with skopeo (a real
// client), and read manifests over the OCI distribution API, directly or
// through a region's Varnish manifest cache. A region whose registry requires
// a login (the local stack's southeastasia) gets it here, as its users would
// give it: skopeo's --creds, an Authorization header.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type RegistryCredentials } from '../../domain/config';
import { MANIFEST_ACCEPT } from '../../domain/manifest';
import { localStackEnv } from './env';
import { readLayoutBlob, type OciImage, type OciIndex } from './oci-image';

const run = promisify(execFile);

/** The login each registry host (and the cache in front of it) asks for, from the local configuration. */
const logins: ReadonlyMap<string, RegistryCredentials> = new Map(
  loadConfig(localStackEnv()).regions.flatMap((region) =>
    region.registryCredentials === null ? [] : [region.registryUrl, ...region.cachePurgeUrls].map((url) => [new URL(url).host, region.registryCredentials!] as const),
  ),
);

function loginFor(urlOrReference: string): RegistryCredentials | null {
  const match = /^(?:docker:\/\/|https?:\/\/)([^/]+)/.exec(urlOrReference);
  return match === null ? null : (logins.get(match[1]!) ?? null);
}

const credsFlag = (flag: string, login: RegistryCredentials | null) => (login === null ? [] : [`${flag}=${login.username}:${login.password}`]);

/** The Authorization header a user of `url`'s registry sends, if it requires a login. */
export function authorizationFor(url: string): Record<string, string> {
  const login = loginFor(url);
  return login === null ? {} : { Authorization: `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}` };
}

/** fetch, logged in to the registry `url` belongs to when it requires it: any raw registry request of a test. */
export function registryFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: { ...authorizationFor(url), ...(init.headers as Record<string, string> | undefined) } });
}

/**
 * Pushes an image or index over the OCI distribution API, as cosign or oras
 * push an artifact and a referrers index (skopeo cannot copy an index of
 * artifacts with --preserve-digests): every blob (POST then PUT, skipped when
 * the registry has it), an index's children by digest, then the manifest
 * under `reference`.
 */
export async function pushWithApi(baseUrl: string, repository: string, pushed: OciImage | OciIndex, reference: string): Promise<void> {
  const url = (path: string) => new URL(`/v2/${repository}/${path}`, baseUrl).href;
  const expectOk = async (response: Response, what: string) => {
    if (!response.ok) throw new Error(`${what} answered ${response.status}: ${await response.text()}`);
  };
  if ('images' in pushed) {
    for (const image of pushed.images) await pushWithApi(baseUrl, repository, image, image.manifestDigest);
  } else {
    for (const blob of [{ digest: pushed.configDigest }, ...pushed.layers.filter((layer) => layer.urls === undefined)]) {
      if ((await registryFetch(url(`blobs/${blob.digest}`), { method: 'HEAD' })).status === 200) continue;
      const started = await registryFetch(url('blobs/uploads/'), { method: 'POST' });
      await expectOk(started, `starting the upload of ${blob.digest}`);
      const location = new URL(started.headers.get('location')!, baseUrl);
      location.searchParams.set('digest', blob.digest);
      const body = await readLayoutBlob(pushed.layoutDir, blob.digest);
      await expectOk(await registryFetch(location.href, { method: 'PUT', body, headers: { 'Content-Type': 'application/octet-stream' } }), `uploading ${blob.digest}`);
    }
  }
  const manifest = await readLayoutBlob(pushed.layoutDir, pushed.manifestDigest);
  const mediaType = (JSON.parse(manifest.toString()) as { mediaType: string }).mediaType;
  await expectOk(await registryFetch(url(`manifests/${reference}`), { method: 'PUT', body: manifest, headers: { 'Content-Type': mediaType } }), `putting ${repository}:${reference}`);
}

/** A skopeo reference for `repository:tag` (or `repository@digest`) on a registry or cache at `baseUrl`. */
export function dockerReference(baseUrl: string, repository: string, reference: string): string {
  const separator = reference.startsWith('sha256:') ? '@' : ':';
  return `docker://${new URL(baseUrl).host}/${repository}${separator}${reference}`;
}

async function skopeo(args: string[]): Promise<Buffer> {
  try {
    const { stdout } = await run('skopeo', ['--insecure-policy', ...args], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    // A login given with --creds stays out of the message.
    const shown = args.map((arg) => arg.replace(/^(--[a-z-]*creds=).*/, '$1…'));
    throw new Error(`skopeo ${shown.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

/**
 * Copies an image (every platform of an index) between skopeo references, e.g. from
 * `oci:<dir>:<tag>` to `docker://127.0.0.1:5001/team/app:1.0`, keeping digests unchanged.
 * Against a Varnish cache each call costs ~5 s: skopeo tries HTTPS first, and Varnish
 * waits `timeout_idle` for the TLS hello to become an HTTP request.
 */
export async function skopeoCopy(source: string, destination: string, extraArgs: string[] = []): Promise<void> {
  const logins = [...credsFlag('--src-creds', loginFor(source)), ...credsFlag('--dest-creds', loginFor(destination))];
  await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', ...logins, ...extraArgs, source, destination]);
}

/** A full pull, as a deploy does: every blob of every platform, digests verified; returns the pulled manifest's digest. */
export async function skopeoPull(reference: string): Promise<string> {
  const layout = await mkdtemp(join(tmpdir(), 'ferry-pull-'));
  try {
    await skopeoCopy(reference, `oci:${layout}:pulled`);
    return await skopeoInspectDigest(`oci:${layout}:pulled`);
  } finally {
    await rm(layout, { recursive: true, force: true });
  }
}

/** The digest of the manifest (or index) bytes that `reference` serves, as a pull would see them. */
export async function skopeoInspectDigest(reference: string): Promise<string> {
  const args = reference.startsWith('docker://') ? ['--tls-verify=false', ...credsFlag('--creds', loginFor(reference))] : [];
  const manifest = await skopeo(['inspect', '--raw', ...args, reference]);
  return `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
}

export interface ManifestResponse {
  status: number;
  /** `Docker-Content-Digest`, when the registry sent it. */
  digest: string | null;
  contentType: string | null;
  /** `X-Cache` from Varnish: HIT or MISS; null straight from a registry. */
  cache: 'HIT' | 'MISS' | null;
  body: Buffer;
}

/** GET (or HEAD) /v2/<repository>/manifests/<reference>, accepting every manifest type. */
export async function getManifest(
  baseUrl: string,
  repository: string,
  reference: string,
  method: 'GET' | 'HEAD' = 'GET',
): Promise<ManifestResponse> {
  const response = await registryFetch(new URL(`/v2/${repository}/manifests/${reference}`, baseUrl).href, {
    method,
    headers: { Accept: MANIFEST_ACCEPT },
  });
  const cache = response.headers.get('x-cache');
  return {
    status: response.status,
    digest: response.headers.get('docker-content-digest'),
    contentType: response.headers.get('content-type'),
    cache: cache === 'HIT' || cache === 'MISS' ? cache : null,
    body: Buffer.from(await response.arrayBuffer()),
  };
}

/** PURGE one URL path (every Accept variant) from a Varnish cache; returns the HTTP status. */
export async function purge(cacheUrl: string, path: string): Promise<number> {
  const response = await fetch(new URL(path, cacheUrl), { method: 'PURGE' });
  await response.arrayBuffer();
  return response.status;
}
