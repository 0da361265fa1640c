// The registry API's paths, scopes and upload bookkeeping Ferry speaks to a
// registry-API region (domain/registry-api.ts).
import { describe, expect, it } from 'vitest';
import { blobUploadUrl, repositoryScopes, tagListUrl, uploadedUpTo, uploadUrl } from '../../domain/registry-api';

describe('registry API requests', () => {
  it('asks a token for exactly what a request does: pull, push (which reads), delete, and a mount’s source', () => {
    expect(repositoryScopes('team/app', 'pull')).toEqual(['repository:team/app:pull']);
    expect(repositoryScopes('team/app', 'push')).toEqual(['repository:team/app:pull,push']);
    expect(repositoryScopes('team/app', 'delete')).toEqual(['repository:team/app:delete']);
    expect(repositoryScopes('team/app', 'push', 'team/base')).toEqual(['repository:team/app:pull,push', 'repository:team/base:pull']);
  });

  it('builds upload, mount and tag-list URLs', () => {
    expect(blobUploadUrl('http://r:5000/', 'team/app')).toBe('http://r:5000/v2/team/app/blobs/uploads/');
    expect(blobUploadUrl('http://r:5000', 'team/app', { digest: 'sha256:ab', from: 'team/base' })).toBe('http://r:5000/v2/team/app/blobs/uploads/?mount=sha256%3Aab&from=team%2Fbase');
    expect(tagListUrl('http://r:5000', 'team/app', 1000)).toBe('http://r:5000/v2/team/app/tags/list?n=1000');
    expect(tagListUrl('http://r:5000', 'team/app', 2, 'v1')).toBe('http://r:5000/v2/team/app/tags/list?n=2&last=v1');
  });

  it('follows an upload’s Location, relative or absolute, keeping its state parameters', () => {
    const request = 'http://r:5000/v2/team/app/blobs/uploads/';
    expect(uploadUrl(request, '/v2/team/app/blobs/uploads/u1?_state=s')).toBe('http://r:5000/v2/team/app/blobs/uploads/u1?_state=s');
    expect(uploadUrl(request, 'https://other/upload/u2', { digest: 'sha256:ab' })).toBe('https://other/upload/u2?digest=sha256%3Aab');
    expect(uploadUrl(request, '/v2/team/app/blobs/uploads/u1?_state=s', { digest: 'sha256:ab' })).toBe('http://r:5000/v2/team/app/blobs/uploads/u1?_state=s&digest=sha256%3Aab');
  });

  it('reads how many bytes an upload holds from its Range header', () => {
    expect(uploadedUpTo('0-16777215')).toBe(16 * 1024 * 1024);
    expect(uploadedUpTo('bytes=0-99')).toBe(100);
    // Distribution answers 0-0 for an empty upload: resumed from the start (a wrong guess costs a 416 and a new upload).
    expect(uploadedUpTo('0-0')).toBe(0);
    expect(uploadedUpTo(null)).toBe(0);
    expect(uploadedUpTo('junk')).toBe(0);
  });
});
