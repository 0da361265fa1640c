// Databases on the configured server: the one the configuration names,
// created when missing (the local stack), and one of its own for a run of the
// tests or the bench beside it, dropped and created afresh.
import pg from 'pg';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

async function withAdmin<T>(postgresUrl: string, run: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: postgresUrl.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  try {
    return await run(admin);
  } finally {
    await admin.end();
  }
}

/** Creates the database `postgresUrl` names if the server lacks it; true when it did. */
export async function ensureDatabase(postgresUrl: string): Promise<boolean> {
  const name = new URL(postgresUrl).pathname.slice(1);
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain database name: ${name}`);
  return withAdmin(postgresUrl, async (admin) => {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount !== 0) return false;
    await admin.query(`CREATE DATABASE ${name}`);
    return true;
  });
}

/** Drops and creates `name` on the server of `postgresUrl`; returns the URL of the new database. */
export async function recreateDatabase(postgresUrl: string, name: string): Promise<string> {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain database name: ${name}`);
  await withAdmin(postgresUrl, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  });
  return postgresUrl.replace(/\/[^/]*$/, `/${name}`);
}
