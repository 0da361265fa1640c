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
          config: { doc: { summary: 'a thing', bearer: true, responses: { '200': { description: 'ok', schema: { type: 'object' } }, ...errors(404) } } },
        },
        async () => ({}),
      );
    });
    const operation = (openApi.build() as { paths: Record<string, Record<string, Record<string, unknown>>> }).paths['/v1/things/{id}']!.get!;
    expect(operation.summary).toBe('a thing');
    expect(operation.security).toEqual([{ bearer: [] }]);
    expect(operation.parameters).toEqual([
      { name: 'id', in: 'path', required: true, schema: { type: 'integer' } },
      { name: 'limit', in: 'query', required: true, description: 'at most', schema: { type: 'integer', maximum: 5 } },
    ]);
    expect(Object.keys(operation.responses as object)).toEqual(['200', '404']);
    expect(openApi.operationNames()).toEqual(['GET /v1/things/{id}']);
  });

  it('names every route registered without a doc', async () => {
    const openApi = await documented((app) => {
      app.get('/documented', { config: { doc: { summary: 's', responses: {} } } }, async () => ({}));
      app.post('/forgotten', async () => ({}));
    });
    expect(openApi.undocumented()).toEqual(['POST /forgotten']);
  });
});
