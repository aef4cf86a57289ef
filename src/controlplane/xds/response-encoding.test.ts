import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { adsServiceDefinition, type DiscoveryResponse } from '../../xds/ads-service.ts';
import { encodeAny, TYPE_URLS } from '../../xds/protos.ts';
import { discoveryResponseChunks, SHARED_CHUNK_MIN } from './response-encoding.ts';

const generic = adsServiceDefinition().StreamAggregatedResources!;
const viaProtobufjs = (r: DiscoveryResponse): Buffer => generic.responseSerialize(r);

function cluster(name: string, pad = 0): ReturnType<typeof encodeAny> {
  return encodeAny({ '@type': TYPE_URLS.CLUSTER, name, type: 'STATIC', connect_timeout: '1s', metadata: { filter_metadata: { pad: { v: 'é'.repeat(pad) } } } });
}

describe('DiscoveryResponse serialization', () => {
  it('writes the bytes protobufjs writes, for empty, small, unicode and multi-megabyte responses, large resources by reference', () => {
    const responses: DiscoveryResponse[] = [
      { version_info: '', resources: [], type_url: TYPE_URLS.CLUSTER, nonce: '' },
      { version_info: '2026-01-01T00:00:00.000Z/3', resources: [cluster('a'), cluster('b')], type_url: TYPE_URLS.CLUSTER, nonce: 'n-1', control_plane: { identifier: 'tsmesh' } },
      { version_info: 'v/é', resources: [cluster('ü', 300)], type_url: TYPE_URLS.CLUSTER, nonce: 'ñ', control_plane: { identifier: '' } },
      { version_info: 'big', resources: Array.from({ length: 12 }, (_, i) => cluster(`c${i}`, 2 ** 20)), type_url: TYPE_URLS.CLUSTER, nonce: 'n-2' },
      { version_info: 'small again', resources: [cluster('z', 5)], type_url: TYPE_URLS.CLUSTER, nonce: 'n-3' },
    ];
    for (const r of responses) {
      const want = viaProtobufjs(r);
      const chunks = discoveryResponseChunks(r);
      const got = Buffer.concat(chunks);
      const large = r.resources.filter((a) => a.value.length >= SHARED_CHUNK_MIN);
      assert.equal(chunks.filter((c) => large.some((a) => a.value === c)).length, large.length, 'large resources are not copied');
      assert.equal(got.length, want.length, `${r.version_info}: length`);
      assert.ok(got.equals(want), `${r.version_info}: bytes`);
      assert.deepEqual(generic.responseDeserialize(got), generic.responseDeserialize(want));
    }
  });
});
