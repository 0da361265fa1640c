// The plans of reconciles and backfills (schema.sql plan_items): written
// whole by the activity that makes the plan, read a page at a time by the
// workflow that carries it out, dropped at its end (or, left by a run that
// failed or was terminated, a week later). A plan is named by its workflow's
// id, so a retried planning activity writes the same plan again.
import type { EventStore } from './event-store';

/** Writes `items` as plan `planId`, replacing any earlier plan of that name. */
export async function savePlan(store: EventStore, planId: string, items: readonly unknown[]): Promise<void> {
  await store.transaction(async (sql) => {
    await sql.query(`DELETE FROM plan_items WHERE plan_id = $1 OR created_at < now() - interval '7 days'`, [planId]);
    for (let start = 0; start < items.length; start += 1000) {
      const batch = items.slice(start, start + 1000);
      await sql.query(
        `INSERT INTO plan_items (plan_id, position, item)
         SELECT $1, $2::int + ordinality::int - 1, item FROM unnest($3::jsonb[]) WITH ORDINALITY AS batch(item, ordinality)`,
        [planId, start, batch.map((item) => JSON.stringify(item))],
      );
    }
  });
}

/** Items `offset` to `offset + limit` of the plan, in order. */
export async function planPage<T>(store: EventStore, planId: string, offset: number, limit: number): Promise<T[]> {
  const rows = await store.pool.query<{ item: T }>(`SELECT item FROM plan_items WHERE plan_id = $1 AND position >= $2 ORDER BY position LIMIT $3`, [planId, offset, limit]);
  return rows.rows.map((row) => row.item);
}

export async function dropPlan(store: EventStore, planId: string): Promise<void> {
  await store.pool.query(`DELETE FROM plan_items WHERE plan_id = $1`, [planId]);
}
