import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { istioPath } from '../../../test/helpers/shared.ts';
import type { ConfigDump } from './dump.ts';
import { endpointSummary, endpointsJson, endpointsYaml } from './endpoints.ts';

const dump = JSON.parse(readFileSync(istioPath('proxy-config', 'endpoint-configdump.json'), 'utf8')) as ConfigDump;
const golden = (name: string): string => readFileSync(istioPath('proxy-config', name), 'utf8');

describe('proxy-config endpoint rendering against istioctl golden output', () => {
  it('prints the same table as istioctl with no filter', () => {
    assert.equal(endpointSummary(dump) + '\n', golden('endpoint-emptyfilter_output.txt'));
  });
  it('prints the same table as istioctl with --port 8080', () => {
    assert.equal(endpointSummary(dump, { port: 8080 }) + '\n', golden('endpoint-portfilter_output.txt'));
  });
  it('prints the same JSON and YAML as istioctl', () => {
    assert.deepEqual(JSON.parse(endpointsJson(dump)), JSON.parse(golden('endpoint-emptyfilter_output.json')));
    assert.deepEqual(JSON.parse(endpointsJson(dump, { port: 8080 })), JSON.parse(golden('endpoint-portfilter_output.json')));
    assert.equal(endpointsYaml(dump, { port: 8080 }).trim(), golden('endpoint-portfilter_output.yaml').trim());
  });
});
