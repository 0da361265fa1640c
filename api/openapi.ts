// The API's OpenAPI description, served at /v1/openapi.json, generated from
// the routes themselves: each route's Fastify schema (querystring, params: the
// same schema that validates the request) gives its parameters, and its
// `config.doc` its summary and responses, its `config.access` the scope it
// needs (api/auth.ts). buildServer refuses to start with a route that has no
// doc, and a stack test exercises every documented route.
import type { RouteOptions } from 'fastify';
import type { Access } from '../domain/auth';

/** What a route says about itself beyond its request schema. */
export interface RouteDoc {
  summary: string;
  /** Status code → description and, for JSON bodies, the body's schema. */
  responses: Record<string, { description: string; schema?: object }>;
}

const SCOPES: Record<Exclude<Access, 'public'>, string> = {
  ingest: 'a token with scope ingest:<region> of the region in the path',
  read: 'a token with scope read:<prefix> covering the repository (read:* or admin: any)',
  metrics: 'a token with scope metrics or admin',
  admin: 'a token with scope admin',
};

declare module 'fastify' {
  interface FastifyContextConfig {
    doc?: RouteDoc;
  }
}

/** A JSON schema of an object whose properties are request parameters (querystring or path). */
export interface ParameterSchema {
  type: 'object';
  properties: Record<string, { type: string; description?: string; enum?: readonly string[]; minimum?: number; maximum?: number; default?: unknown }>;
  required?: readonly string[];
}

export const errorSchema = { $ref: '#/components/schemas/Error' };

/** The error responses a route may give, all with Ferry's one error shape. */
export function errors(...codes: number[]): RouteDoc['responses'] {
  return Object.fromEntries(codes.map((code) => [String(code), { description: 'error', schema: errorSchema }]));
}

interface Operation {
  method: string;
  path: string;
  doc: RouteDoc | undefined;
  access: Access | undefined;
  querystring?: ParameterSchema;
  params?: ParameterSchema;
}

function parameters(schema: ParameterSchema | undefined, location: 'query' | 'path') {
  return Object.entries(schema?.properties ?? {}).map(([name, { description, ...property }]) => ({
    name,
    in: location,
    required: location === 'path' || (schema?.required ?? []).includes(name),
    ...(description ? { description } : {}),
    schema: property,
  }));
}

/** Collects every route as Fastify registers it (an onRoute hook), and writes the document from them. */
export class OpenApiDocument {
  private readonly operations: Operation[] = [];

  readonly onRoute = (route: RouteOptions): void => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((method) => method !== 'HEAD');
    const schema = (route.schema ?? {}) as { querystring?: ParameterSchema; params?: ParameterSchema };
    for (const method of methods) {
      this.operations.push({ method: method.toLowerCase(), path: route.url.replace(/:(\w+)/g, '{$1}'), doc: route.config?.doc, access: route.config?.access, querystring: schema.querystring, params: schema.params });
    }
  };

  /** `METHOD /path` of every registered route without a doc. */
  undocumented(): string[] {
    return this.operations.filter((operation) => operation.doc === undefined).map((operation) => `${operation.method.toUpperCase()} ${operation.path}`);
  }

  /** `METHOD /path/{param}` of every documented operation. */
  operationNames(): string[] {
    return this.operations.filter((operation) => operation.doc !== undefined).map((operation) => `${operation.method.toUpperCase()} ${operation.path}`);
  }

  build(): object {
    const paths: Record<string, Record<string, object>> = {};
    for (const { method, path, doc, access, querystring, params } of this.operations) {
      if (!doc) continue;
      const parameterList = [...parameters(params, 'path'), ...parameters(querystring, 'query')];
      const guarded = access !== undefined && access !== 'public';
      paths[path] = {
        ...paths[path],
        [method]: {
          summary: doc.summary,
          ...(guarded ? { description: `Needs ${SCOPES[access]}.`, security: [{ bearer: [] }] } : {}),
          ...(parameterList.length > 0 ? { parameters: parameterList } : {}),
          responses: Object.fromEntries(
            Object.entries({ ...doc.responses, ...(guarded ? errors(401, 403) : {}) }).map(([code, { description, schema }]) => [code, { description, ...(schema ? { content: { 'application/json': { schema } } } : {}) }]),
          ),
        },
      };
    }
    return {
      openapi: '3.1.0',
      info: { title: 'Ferry', version: '0.1.0', description: 'Geo-replication for container registries: ingest, replication status, waiting for regions.' },
      paths,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
        schemas: {
          Error: { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } },
        },
      },
    };
  }
}
