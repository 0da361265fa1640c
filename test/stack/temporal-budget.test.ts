// The orchestration budget of DESIGN.md "Cost of one push", read from
// Temporal's own records of a real push: an image of 3 blobs (config and two
// layers) pushed with skopeo into eastus and replicated into westeurope and
// southeastasia costs one workflow execution and at most 20 history events,
// with search attributes set at start and upserted once.
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest, parseRepositoryName } from '../../domain/reference';
import { outcomeFilter, type OutcomeMessage } from '../../domain/subjects';
import { REPLICATION_WORKFLOW, searchAttributes } from '../../domain/workflow-contract';
import { localConfig, MessageCollector, uniqueRepository } from '../support/ferry';
import { buildImage } from '../support/oci-image';
import { skopeoCopy } from '../support/registry';
import { temporalConnectOptions } from '../../domain/config';

const config = localConfig();
let connection: Connection;
let temporal: Client;

beforeAll(async () => {
  connection = await Connection.connect(temporalConnectOptions(config));
  temporal = new Client({ connection, namespace: config.temporal.namespace });
});

afterAll(async () => {
  await connection?.close();
});

describe('the Temporal cost of one push', () => {
  it('is one execution and at most 20 history events for 3 blobs into 2 regions', async () => {
    const repository = parseRepositoryName(uniqueRepository('budget'));
    const image = await buildImage({ layers: [{ size: 300_000 }, { size: 200_000 }], tag: 'v1' });
    const outcomes = await MessageCollector.start<OutcomeMessage>(config.natsUrl, outcomeFilter(repository, parseDigest(image.manifestDigest)));
    try {
      await skopeoCopy(image.reference, `docker://127.0.0.1:5001/${repository}:v1`);
      const [outcome] = await outcomes.waitFor(1, 60_000);
      expect(outcome!.body.succeeded.sort()).toEqual(['southeastasia', 'westeurope']);
    } finally {
      await outcomes.stop();
    }

    const executions = [];
    for await (const execution of temporal.workflow.list({ query: `${searchAttributes.repository.name} = '${repository}'` })) executions.push(execution);
    expect(executions.map((execution) => execution.type)).toEqual([REPLICATION_WORKFLOW]);

    const history = await temporal.workflow.getHandle(executions[0]!.workflowId).fetchHistory();
    const events = history.events ?? [];
    const count = (attribute: keyof (typeof events)[number]) => events.filter((event) => event[attribute] != null).length;
    console.log(
      `one push (3 blobs → 2 regions): ${events.length} history events, ${count('activityTaskScheduledEventAttributes')} activities, ` +
        `${count('markerRecordedEventAttributes')} local activity, ${count('upsertWorkflowSearchAttributesEventAttributes')} upsert, ` +
        `${count('workflowTaskScheduledEventAttributes')} workflow tasks`,
    );
    expect(events.length).toBeLessThanOrEqual(20);
    expect(count('activityTaskScheduledEventAttributes')).toBe(2);
    expect(count('startChildWorkflowExecutionInitiatedEventAttributes')).toBe(0);
    expect(count('upsertWorkflowSearchAttributesEventAttributes')).toBe(1);
  });
});
