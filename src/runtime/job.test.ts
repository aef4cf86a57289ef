import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { humanDuration, jobBackoffDelay, jobCompletionsText, jobDurationText, jobObject, jobPodName, jobSpecOf, jobStatusText, jobSupportWarning, type JobState } from './job.ts';

const job = (over: Partial<JobState> = {}): JobState => ({ name: 'pi', namespace: 'default', labels: {}, backoffLimit: 6, completions: 1, parallelism: 1, startTime: '2026-01-01T00:00:00.000Z', active: 1, succeeded: 0, failed: 0, conditions: [], pods: ['pi-abcde'], ...over });

describe('Job back-off', () => {
  it('doubles from 10 s and stops at 6 min, as the Job controller', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map((n) => jobBackoffDelay(n)), [10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 360_000, 360_000]);
    assert.equal(jobBackoffDelay(0), 0);
  });
  it('takes another base (tests shorten it)', () => {
    assert.deepEqual([1, 2, 3].map((n) => jobBackoffDelay(n, 100)), [100, 200, 400]);
  });
});

describe('Job spec and names', () => {
  it('defaults backoffLimit to 6 and one completion, parallelism 1', () => {
    assert.deepEqual(jobSpecOf(undefined), { backoffLimit: 6, completions: 1, parallelism: 1 });
    assert.deepEqual(jobSpecOf({ backoffLimit: 0, activeDeadlineSeconds: 30 }), { backoffLimit: 0, completions: 1, parallelism: 1, activeDeadlineSeconds: 30 });
  });
  it('warns when a Job asks for more than one completion or pod at a time', () => {
    assert.equal(jobSupportWarning('default', 'pi', { completions: 1, parallelism: 1 }), undefined);
    assert.match(jobSupportWarning('default', 'pi', { completions: 3, parallelism: 2 }) ?? '', /Job default\/pi asks for completions 3 and parallelism 2: the local runtime runs one completion with parallelism 1/);
  });
  it('names pods <job>-<5 chars> of Kubernetes\' alphabet, never one taken', () => {
    const seq = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    let i = 0;
    const name = jobPodName('pi', new Set(['pi-bbbbb']), () => seq[i++ % seq.length] ?? 0);
    assert.equal(name, 'pi-ccccc');
    assert.match(jobPodName('pi', new Set()), /^pi-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });
});

describe('Job status', () => {
  it('is Running, then Complete with 1/1, or Failed', () => {
    assert.deepEqual([jobStatusText(job()), jobCompletionsText(job())], ['Running', '0/1']);
    const done = job({ active: 0, succeeded: 1, failed: 2, completionTime: '2026-01-01T00:00:42.000Z', conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: '2026-01-01T00:00:42.000Z' }] });
    assert.deepEqual([jobStatusText(done), jobCompletionsText(done), jobDurationText(done, Date.parse('2026-01-01T01:00:00Z'))], ['Complete', '1/1', '42s']);
    const failed = job({ active: 0, failed: 2, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastTransitionTime: '2026-01-01T00:03:00.000Z' }] });
    assert.deepEqual([jobStatusText(failed), jobCompletionsText(failed), jobDurationText(failed, Date.parse('2026-01-01T00:03:00Z'))], ['Failed', '0/1', '3m']);
    assert.equal(jobDurationText(job(), Date.parse('2026-01-01T00:00:05Z')), '5s');
  });
  it('renders Kubernetes\' shape: counts only when non-zero, conditions', () => {
    const o = jobObject(job({ active: 0, failed: 2, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', lastTransitionTime: 't' }] }));
    assert.equal(o.kind, 'Job');
    assert.deepEqual(o.status, { startTime: '2026-01-01T00:00:00.000Z', failed: 2, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', lastTransitionTime: 't' }] });
  });
  it('prints durations as kubectl does', () => {
    assert.deepEqual([59_000, 119_000, 200_000, 1_800_000, 12_600_000, 36_000_000, 200_000_000].map(humanDuration), ['59s', '119s', '3m20s', '30m', '3h30m', '10h', '2d']);
  });
});
