// The API's OpenAPI description, served at /v1/openapi.json. buildServer
// refuses to start when a registered route is missing here or a documented
// one is not registered, and a stack test exercises every documented route.
const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const errors = (...codes: number[]) => Object.fromEntries(codes.map((code) => [String(code), { description: 'error', ...json(error) }]));
const query = (name: string, description: string, required = false) => ({ name, in: 'query', required, description, schema: { type: 'string' } });

const regionStatus = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['pending', 'copying', 'replicated', 'failed'] },
    blobsCopied: { type: 'integer' },
    blobsSkipped: { type: 'integer' },
    bytesDone: { type: 'integer' },
    bytesTotal: { type: ['integer', 'null'] },
    tagMoved: { type: 'boolean' },
    replicatedAt: { type: ['string', 'null'], format: 'date-time' },
    lagSeconds: { type: ['number', 'null'], description: 'push observed → replicated in this region' },
    failure: { type: ['string', 'null'] },
  },
};

const replication = {
  type: 'object',
  properties: {
    replicationId: { type: 'integer' },
    kind: { type: 'string', enum: ['push', 'delete-digest', 'delete-tag'] },
    repository: { type: 'string' },
    tag: { type: ['string', 'null'] },
    digest: { type: ['string', 'null'] },
    sourceRegion: { type: 'string' },
    workflowId: { type: 'string', description: 'the workflow in the Temporal UI' },
    observedAt: { type: 'string', format: 'date-time' },
    outcome: { type: 'string', enum: ['pending', 'succeeded', 'partial', 'failed'] },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    regions: { type: 'object', additionalProperties: regionStatus },
  },
};

const regionProgress = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['unobserved', 'pending', 'copying', 'replicated', 'failed'] },
    replicationId: { type: ['integer', 'null'] },
    bytesDone: { type: 'integer' },
    bytesTotal: { type: ['integer', 'null'] },
    replicatedAt: { type: ['string', 'null'], format: 'date-time' },
    lagSeconds: { type: ['number', 'null'] },
    failure: { type: ['string', 'null'] },
  },
};

const waitStatus = {
  type: 'object',
  properties: {
    reference: { type: 'string' },
    state: { type: 'string', enum: ['waiting', 'replicated', 'failed'] },
    version: { type: 'string', description: 'pass as `after` to hold the next request until something changes' },
    regions: { type: 'object', additionalProperties: regionProgress },
  },
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'Ferry', version: '0.1.0', description: 'Geo-replication for container registries: ingest, replication status, waiting for regions.' },
  paths: {
    '/healthz': { get: { summary: 'liveness', responses: { '200': { description: 'up' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics (text exposition format)', responses: { '200': { description: 'metrics' } } } },
    '/v1/openapi.json': { get: { summary: 'this document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    '/v1/notifications/{format}/{region}': {
      post: {
        summary: 'a registry notification (format: distribution, harbor or acr) from the registry of <region>',
        security: [{ bearer: [] }],
        parameters: [
          { name: 'format', in: 'path', required: true, schema: { type: 'string', enum: ['distribution', 'harbor', 'acr'] } },
          { name: 'region', in: 'path', required: true, schema: { type: 'string' } },
        ],
        responses: { '202': { description: 'recorded and started, or acknowledged and ignored' }, ...errors(400, 401, 404, 413, 415, 503) },
      },
    },
    '/v1/status': {
      get: {
        summary: 'the newest push of repository:tag or repository@digest, region by region',
        parameters: [query('repository', 'repository name', true), query('tag', 'a tag (or give digest)'), query('digest', 'a digest (or give tag)')],
        responses: { '200': { description: 'status', ...json(replication) }, ...errors(400, 404) },
      },
    },
    '/v1/wait': {
      get: {
        summary: 'long poll: answers once repository:tag (its newest push) or repository@digest is replicated in every region asked, fails in one, changes from `after`, or `timeout` passes',
        parameters: [
          query('repository', 'repository name', true),
          query('tag', 'a tag (or give digest)'),
          query('digest', 'a digest (or give tag)'),
          query('regions', 'comma-separated regions', true),
          query('after', 'the version last seen: hold until the status differs'),
          query('timeout', 'seconds to hold the request, 0 to 60, default 30'),
        ],
        responses: { '200': { description: 'the status, state waiting when the timeout passed first', ...json(waitStatus) }, ...errors(400) },
      },
    },
    '/v1/replications': {
      get: {
        summary: 'replications, newest first',
        parameters: [
          query('repository', 'only this repository'),
          query('state', 'only those with a region in this state'),
          query('region', 'only those with this target region'),
          query('limit', '1 to 500, default 50'),
          query('before', 'page cursor: replication id'),
        ],
        responses: {
          '200': { description: 'a page', ...json({ type: 'object', properties: { items: { type: 'array', items: replication }, next: { type: ['string', 'null'] } } }) },
          ...errors(400),
        },
      },
    },
    '/v1/replications/{id}/events': {
      get: {
        summary: 'the event history of one replication',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
        responses: { '200': { description: 'events in order' }, ...errors(400, 404) },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } },
    },
  },
} as const;

/** `METHOD /path/{param}` for every documented operation. */
export function documentedOperations(): string[] {
  return Object.entries(openApiDocument.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`));
}
