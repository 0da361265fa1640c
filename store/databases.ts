// A database of its own for a run of the tests or the bench, beside the one
// the configuration names: dropped and created afresh on the same server.
import pg from 'pg';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** Drops and creates `name` on the server of `postgresUrl`; returns the URL of the new database. */
export async function recreateDatabase(postgresUrl: string, name: string): Promise<string> {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain database name: ${name}`);
  const admin = new pg.Client({ connectionString: postgresUrl.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return postgresUrl.replace(/\/[^/]*$/, `/${name}`);
}
