// Authentication at the api's edge, in an onRequest hook: it runs before any
// body is read, so a caller without a valid token costs no parsing. Every
// route declares what it needs (route config `access`, domain/auth.ts); one
// that declares nothing fails the server's start.
//
//   401 UNAUTHORIZED  no bearer token, or one Ferry does not know
//   403 FORBIDDEN     a known token without the scope the route needs (an ingest
//                     token for another region, a read token at /metrics)
//
// Read routes narrow further by repository (api/status.ts, api/wait.ts) with
// the grant this hook leaves on the request.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerSecret, permits, ReadGrant, TokenSet, type Access, type ApiToken } from '../domain/auth';
import { ApiError } from './ingest';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs of its caller; every route says. */
    access?: Access;
  }
  interface FastifyRequest {
    /** The caller's token, set by the auth hook (null on public routes). */
    token: ApiToken | null;
  }
}

const UNAUTHORIZED_MESSAGE = 'a valid "Authorization: Bearer <token>" header is required';

/** The read grant of the request's token; only read routes call it, behind the hook. */
export function readGrantOf(request: FastifyRequest): ReadGrant {
  if (request.token === null) throw new Error(`route ${request.routeOptions.url} reads without a token: declare access 'read'`);
  return ReadGrant.of(request.token);
}

/** Registers the hook; returns the routes registered without an access declaration. */
export function installAuth(app: FastifyInstance, tokens: readonly ApiToken[], regions: readonly string[]): { undeclared: () => string[] } {
  const known = new TokenSet(tokens);
  const undeclared: string[] = [];
  app.decorateRequest('token', null);
  app.addHook('onRoute', (route) => {
    if (route.config?.access === undefined) undeclared.push(`${String(route.method)} ${route.url}`);
  });
  app.addHook('onRequest', async (request, reply) => {
    // Unmatched URLs carry no config: they answer 404 after the same check as any other route.
    const access = request.routeOptions.config?.access ?? 'read';
    if (access === 'public') return;
    const secret = bearerSecret(request.headers.authorization);
    const token = secret === null ? null : known.find(secret);
    if (token === null) {
      void reply.header('www-authenticate', 'Bearer realm="ferry"');
      throw new ApiError(401, 'UNAUTHORIZED', UNAUTHORIZED_MESSAGE);
    }
    const region = (request.params as { region?: string } | undefined)?.region;
    // A region Ferry does not know is a configuration error the ingest route names (404), to any ingest token.
    const unknownRegion = access === 'ingest' && !regions.includes(region ?? '') && token.scopes.some((scope) => scope.kind === 'ingest');
    if (!unknownRegion && !permits(token, access, region)) {
      const what = access === 'ingest' ? `send notifications for region "${region}"` : access === 'read' ? 'read replications' : `use ${access} routes`;
      throw new ApiError(403, 'FORBIDDEN', `token "${token.name}" may not ${what}`);
    }
    request.token = token;
  });
  return { undeclared: () => [...undeclared] };
}
