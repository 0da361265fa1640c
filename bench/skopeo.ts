// skopeo, the real client: it pushes the image set into eastus for every
// phase, and its `sync` is the baseline users would run instead of Ferry.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RegistryCredentials } from '../domain/config';

const run = promisify(execFile);

async function skopeo(args: string[]): Promise<void> {
  try {
    await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    // A login given with --creds stays out of the message.
    const shown = args.map((arg) => arg.replace(/^(--[a-z-]*creds=).*/, '$1…'));
    throw new Error(`skopeo ${shown.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

/** `host:port` of a registry URL, as skopeo's docker:// references want it. */
export function registryHost(registryUrl: string): string {
  return new URL(registryUrl).host;
}

/** Attempts per push: versitygw's posix backend now and then answers a concurrent upload with 409 ExistingObjectIsDirectory, which the registry passes on as a 500. */
const PUSH_ATTEMPTS = 3;

/** Pushes one tag of an OCI layout to `docker://<host>/<repository>:<tag>`, digests unchanged; retries a failed push. */
export async function pushFromLayout(layoutDir: string, tag: string, host: string, repository: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layoutDir}:${tag}`, `docker://${host}/${repository}:${tag}`]);
      return;
    } catch (error) {
      if (attempt >= PUSH_ATTEMPTS) throw error;
      console.warn(`bench: push of ${repository}:${tag} failed (attempt ${attempt} of ${PUSH_ATTEMPTS}), retrying: ${(error as Error).message}`);
    }
  }
}

/**
 * Copies every tag of `repository` on one registry to `<destinationNamespace>/<last
 * path component>` on another: one process, images one after another, which is
 * what `skopeo sync` does.
 */
export async function syncRepository(
  sourceHost: string,
  repository: string,
  destinationHost: string,
  destinationNamespace: string,
  destinationLogin: RegistryCredentials | null,
): Promise<void> {
  await skopeo([
    'sync',
    // The login a region's registry requires (the local stack's southeastasia).
    ...(destinationLogin === null ? [] : [`--dest-creds=${destinationLogin.username}:${destinationLogin.password}`]),
    '--src',
    'docker',
    '--dest',
    'docker',
    '--preserve-digests',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    `${sourceHost}/${repository}`,
    `${destinationHost}/${destinationNamespace}`,
  ]);
}

