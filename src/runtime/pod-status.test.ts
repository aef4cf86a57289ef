// kubectl's STATUS and RESTARTS of the runtime's pods through their init containers, and `tsmesh up`'s line for a
// pod that did not start.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { containerStatus, notStartedText, podRestarts, podStatusText } from './pod-status.ts';
import type { ContainerState, PodState } from './state.ts';

const c = (name: string, s: Partial<ContainerState> = {}): ContainerState => ({ name, log: '', state: 'waiting', reason: 'PodInitializing', restartCount: 0, ready: false, ...s });
const done = (name: string): ContainerState => c(name, { state: 'terminated', exitCode: 0, reason: 'Completed', ready: true });
const running = (name: string): ContainerState => c(name, { state: 'running', ready: true });
const pod = (initContainers: ContainerState[], containers: ContainerState[], extra: Partial<PodState> = {}): PodState => ({
  name: 'web-1',
  namespace: 'default',
  ip: '10.250.1.2',
  netns: 'x',
  phase: 'Pending',
  sidecar: true,
  labels: {},
  initContainers,
  containers,
  ...extra,
});
const waitingApps = [c('istio-proxy'), c('web')];

describe('podStatusText through init containers (kubectl printPod)', () => {
  it('Init:N/M while init container N (the count of completed ones) of M runs or waits to start', () => {
    assert.equal(podStatusText(pod([c('a'), c('b'), c('istio-init')], waitingApps)), 'Init:0/3');
    assert.equal(podStatusText(pod([done('a'), c('b', { state: 'running' }), c('istio-init')], waitingApps)), 'Init:1/3');
    assert.equal(podStatusText(pod([done('a'), done('b'), c('istio-init')], waitingApps)), 'Init:2/3');
  });

  it('Init:Error after a failed exit, Init:CrashLoopBackOff while backing off, Init:ExitCode / Init:Signal without a reason', () => {
    assert.equal(podStatusText(pod([done('a'), c('b', { state: 'terminated', exitCode: 1, reason: 'Error' })], waitingApps)), 'Init:Error');
    assert.equal(podStatusText(pod([c('a', { reason: 'CrashLoopBackOff', restartCount: 2, last: { exitCode: 1, reason: 'Error' } })], waitingApps)), 'Init:CrashLoopBackOff');
    assert.equal(podStatusText(pod([c('a', { state: 'terminated', exitCode: 7, reason: undefined })], waitingApps)), 'Init:ExitCode:7');
    assert.equal(podStatusText(pod([c('a', { state: 'terminated', signal: 'SIGKILL', reason: undefined })], waitingApps)), 'Init:Signal:SIGKILL');
    assert.equal(podStatusText(pod([c('a', { state: 'terminated', exitCode: 2, reason: 'Error' })], waitingApps, { phase: 'Failed' })), 'Init:Error', 'restartPolicy Never: the pod failed in init');
  });

  it('PodInitializing once every init container completed and until the containers run, then Running', () => {
    const inits = [done('a'), done('istio-init')];
    assert.equal(podStatusText(pod(inits, waitingApps, { phase: 'Running' })), 'PodInitializing');
    assert.equal(podStatusText(pod(inits, [running('istio-proxy'), c('web')], { phase: 'Running' })), 'PodInitializing', 'the sidecar runs, the application not yet');
    assert.equal(podStatusText(pod(inits, [running('istio-proxy'), running('web')], { phase: 'Running' })), 'Running');
    assert.equal(podStatusText(pod(inits, [running('istio-proxy'), c('web', { reason: 'CrashLoopBackOff' })], { phase: 'Running' })), 'CrashLoopBackOff');
  });

  it('a pod that could not start says StartError, wherever its init containers were', () => {
    assert.equal(podStatusText(pod([c('a')], waitingApps, { phase: 'Failed', reason: 'StartError' })), 'StartError');
  });

  it('pods without init containers (and state files of older runtimes) read as before', () => {
    const p = pod([], [running('istio-proxy'), c('job', { state: 'terminated', exitCode: 0, reason: 'Completed' })], { phase: 'Running' });
    assert.equal(podStatusText(p), 'Running');
    delete p.initContainers;
    assert.equal(podStatusText(p), 'Running');
    assert.equal(podRestarts(p), 0);
  });
});

describe('podRestarts (kubectl RESTARTS)', () => {
  it('counts the init containers\' restarts while the pod initializes, then the containers\'', () => {
    assert.equal(podRestarts(pod([c('a', { reason: 'CrashLoopBackOff', restartCount: 3 })], [c('web', { restartCount: 0 })])), 3);
    assert.equal(podRestarts(pod([done('a')], [c('web', { state: 'running', restartCount: 1 })], { phase: 'Running' })), 1);
  });
});

describe('containerStatus (initContainerStatuses / containerStatuses in Kubernetes\' shape)', () => {
  it('a completed init container is terminated with exit 0, ready; a backing-off one waits with its last exit', () => {
    assert.deepEqual(containerStatus(done('a')), { name: 'a', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
    assert.deepEqual(containerStatus(c('b', { reason: 'CrashLoopBackOff', restartCount: 2, last: { exitCode: 1, reason: 'Error' } })), {
      name: 'b',
      ready: false,
      restartCount: 2,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { exitCode: 1, reason: 'Error' } },
    });
  });
});

describe('notStartedText (`tsmesh up` names the pods that did not start)', () => {
  it('names the pod, its state, the init container and where its log is', () => {
    const t = notStartedText(pod([done('a'), c('fetch', { reason: 'CrashLoopBackOff', restartCount: 4, last: { exitCode: 1, reason: 'Error' } })], waitingApps));
    assert.equal(t, 'pod default/web-1 is still initializing: Init:CrashLoopBackOff (init container fetch, last exit 1, restarts 4); see `tsmesh logs web-1 -n default -c fetch`');
    assert.match(notStartedText(pod([c('a', { state: 'terminated', exitCode: 2, reason: 'Error' })], waitingApps, { phase: 'Failed' })) ?? '', /^pod default\/web-1 failed in init: Init:Error \(init container a, last exit 2/);
    assert.equal(notStartedText(pod([c('a')], waitingApps, { phase: 'Failed', reason: 'StartError', message: 'the sidecar at 10.250.1.2 was not ready within 30000 ms' })), 'pod default/web-1: the sidecar at 10.250.1.2 was not ready within 30000 ms');
  });

  it('says nothing of a pod that started (init done), even one whose application crashes', () => {
    assert.equal(notStartedText(pod([done('a')], [running('istio-proxy'), c('web', { reason: 'CrashLoopBackOff' })], { phase: 'Running' })), undefined);
    assert.equal(notStartedText(pod([], [running('web')], { phase: 'Running' })), undefined);
  });
});
