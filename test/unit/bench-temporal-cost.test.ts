import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { describe, expect, it } from 'vitest';
import { countHistory, NO_TEMPORAL_COST, perImage, type HistoryEvent } from '../../bench/temporal-cost';

// Events as the client decodes them: the fields an event does not carry hold null.
const event = (attributes: keyof HistoryEvent | 'workflowExecutionStartedEventAttributes'): HistoryEvent => ({
  activityTaskScheduledEventAttributes: null,
  markerRecordedEventAttributes: null,
  upsertWorkflowSearchAttributesEventAttributes: null,
  workflowTaskScheduledEventAttributes: null,
  [attributes]: {},
});

/** One push of the first stage's shape, cut short: start, a workflow task, an upsert, a local activity, two region activities. */
const push: HistoryEvent[] = [
  event('workflowExecutionStartedEventAttributes'),
  event('workflowTaskScheduledEventAttributes'),
  event('upsertWorkflowSearchAttributesEventAttributes'),
  event('markerRecordedEventAttributes'),
  event('activityTaskScheduledEventAttributes'),
  event('activityTaskScheduledEventAttributes'),
  event('workflowTaskScheduledEventAttributes'),
];

describe("bench count of Temporal's cost", () => {
  it('counts executions, every event, and each kind by the attributes it carries', () => {
    expect([push, push.slice(0, 2)].reduce(countHistory, NO_TEMPORAL_COST)).toEqual({
      executions: 2,
      historyEvents: 9,
      activityTasks: 2,
      localActivities: 1,
      searchAttributeUpserts: 1,
      workflowTasks: 3,
    });
  });

  it('counts a history decoded the way the client decodes one', () => {
    const history = historyFromJSON({
      events: [
        { eventId: '1', eventType: 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED', workflowExecutionStartedEventAttributes: { workflowType: { name: 'replicateChange' } } },
        { eventId: '2', eventType: 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED', workflowTaskScheduledEventAttributes: {} },
        { eventId: '3', eventType: 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED', activityTaskScheduledEventAttributes: { activityId: '1' } },
        { eventId: '4', eventType: 'EVENT_TYPE_MARKER_RECORDED', markerRecordedEventAttributes: { markerName: 'LocalActivity' } },
      ],
    });
    expect(countHistory(NO_TEMPORAL_COST, history.events ?? [])).toEqual({
      executions: 1,
      historyEvents: 4,
      activityTasks: 1,
      localActivities: 1,
      searchAttributeUpserts: 0,
      workflowTasks: 1,
    });
  });

  it('reads plain objects that leave absent attributes out', () => {
    expect(countHistory(NO_TEMPORAL_COST, [{}, { activityTaskScheduledEventAttributes: { activityId: '1' } }])).toMatchObject({ historyEvents: 2, activityTasks: 1, workflowTasks: 0 });
  });

  it('counts an execution with no events yet', () => {
    expect(countHistory(NO_TEMPORAL_COST, [])).toEqual({ ...NO_TEMPORAL_COST, executions: 1 });
  });

  it('divides every figure by the images pushed', () => {
    const cost = [push, push, push].reduce(countHistory, NO_TEMPORAL_COST);
    expect(perImage(cost, 2)).toEqual({ executions: 1.5, historyEvents: 10.5, activityTasks: 3, localActivities: 1.5, searchAttributeUpserts: 1.5, workflowTasks: 3 });
  });
});
