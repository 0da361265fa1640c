// The shapes of Ferry the local stack starts (stack/components.ts `ferry`):
// by default one worker for every queue; with `up --with-ferry
// --workers-per-region N` the production shape on one machine. Each worker is
// read back as it reads itself, through loadConfig on the environment it is
// given. No process is started.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../domain/config';
import { CONTROL_TASK_QUEUE, regionTaskQueue } from '../../domain/workflow-contract';
import { ferry, isFerryProcess } from '../../stack/components';
import { localTopology } from '../../stack/topology';
import { localEnv } from '../../support/local-env';

const topology = localTopology();
const regions = topology.regions.map((region) => region.name);
/** The stack's environment (stack/local.env), without whatever the shell running the test holds. */
const env = localEnv();

/** Each worker of a shape, as it would configure itself. */
function workersOf(workersPerRegion?: number) {
  const [api, ...workers] = ferry(topology, env, workersPerRegion);
  expect(api!.spec.name).toBe('api');
  expect(api!.address).toBe(topology.ingestAddress);
  return workers.map(({ spec, address }) => {
    const config = loadConfig(spec.env, 'worker');
    return { name: spec.name, args: spec.args, address, queues: config.worker.queues, metrics: config.worker.metrics };
  });
}

describe("the local stack's Ferry workers", () => {
  it('are one worker polling every queue by default, metrics on :9464 and :9465', () => {
    const workers = workersOf();
    expect(workers.map((worker) => worker.name)).toEqual(['worker']);
    // No queues configured: the worker polls the control queue and every region's (workers/workers.ts).
    expect(workers[0]!.queues).toBeUndefined();
    expect(workers[0]!.metrics).toMatchObject({ port: 9464, runtimePort: 9465 });
  });

  it('with --workers-per-region 2, are a control worker and two workers per region queue, each on its own queue and metrics ports', () => {
    const workers = workersOf(2);
    expect(workers.map((worker) => worker.name)).toEqual(['worker-control', ...regions.flatMap((region) => [`worker-${region}-1`, `worker-${region}-2`])]);

    const control = workers.filter((worker) => worker.name === 'worker-control');
    expect(control.map((worker) => worker.queues)).toEqual([[CONTROL_TASK_QUEUE]]);
    for (const region of regions) {
      const own = workers.filter((worker) => worker.name.startsWith(`worker-${region}-`));
      expect(own.map((worker) => worker.queues), region).toEqual([[regionTaskQueue(region)], [regionTaskQueue(region)]]);
    }
    // Every queue is served, and no worker polls more than one.
    expect(new Set(workers.flatMap((worker) => worker.queues ?? []))).toEqual(new Set([CONTROL_TASK_QUEUE, ...regions.map(regionTaskQueue)]));

    const ports = workers.flatMap((worker) => [worker.metrics.port, worker.metrics.runtimePort]);
    expect(new Set(ports).size, 'metrics ports shared by two workers').toBe(ports.length);
    expect(ports).not.toContain(Number(topology.ingestAddress.split(':')[1]));
    expect(Math.min(...ports)).toBe(9464);

    // They run the same entry point as the single worker, answer on no address, and `stack stop-ferry` stops them.
    const [single] = workersOf();
    for (const worker of workers) {
      expect(worker.args, worker.name).toEqual(single!.args);
      expect(worker.address, worker.name).toBeNull();
      expect(isFerryProcess(worker.name), worker.name).toBe(true);
    }
  });

  it('with --workers-per-region 1, still split the queues: a control worker and one worker per region', () => {
    const workers = workersOf(1);
    expect(workers.map((worker) => [worker.name, worker.queues])).toEqual([
      ['worker-control', [CONTROL_TASK_QUEUE]],
      ...regions.map((region) => [`worker-${region}-1`, [regionTaskQueue(region)]]),
    ]);
  });
});
