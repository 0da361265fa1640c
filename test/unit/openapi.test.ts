// The OpenAPI document is generated from the routes: parameters from the
// schema that validates the request, summary and responses from its doc.
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { errors, OpenApiDocument } from '../../api/openapi';

async function documented(register: (app: ReturnType<typeof Fastify>) => void) {
  const app = Fastify();
  const openApi = new OpenApiDocument();
  app.addHook('onRoute', openApi.onRoute);
  register(app);
  await app.ready();
  await app.close();
  return openApi;
}

describe('OpenApiDocument', () => {
  it('turns path params and querystring properties into parameters, and docs into responses', async () => {
    const openApi = await documented((app) => {
      app.get(
        '/v1/things/:id',
        {
          schema: {
            params: { type: 'object', properties: { id: { type: 'integer' } } },
            querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 5, description: 'at most' } }, required: ['limit'] },
          },
          config: { access: 'read', doc: { summary: 'a thing', responses: { '200': { description: 'ok', schema: { type: 'object' } }, ...errors(404) } } },
        },
        async () => ({}),
      );
    });
    const operation = (openApi.build() as { paths: Record<string, Record<string, Record<string, unknown>>> }).paths['/v1/things/{id}']!.get!;
    expect(operation.summary).toBe('a thing');
    // The route's access says which token it needs, and adds the answers of the auth hook.
    expect(operation.security).toEqual([{ bearer: [] }]);
    expect(operation.description).toMatch(/^Needs a token with scope read:<prefix>/);
    expect(operation.parameters).toEqual([
      { name: 'id', in: 'path', required: true, schema: { type: 'integer' } },
      { name: 'limit', in: 'query', required: true, description: 'at most', schema: { type: 'integer', maximum: 5 } },
    ]);
    expect(Object.keys(operation.responses as object)).toEqual(['200', '401', '403', '404']);
    expect(openApi.operationNames()).toEqual(['GET /v1/things/{id}']);
  });

  it('names every route registered without a doc', async () => {
    const openApi = await documented((app) => {
      app.get('/documented', { config: { access: 'public', doc: { summary: 's', responses: {} } } }, async () => ({}));
      app.post('/forgotten', async () => ({}));
    });
    expect(openApi.undocumented()).toEqual(['POST /forgotten']);
  });
});
