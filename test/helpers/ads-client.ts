// A minimal ADS client over real gRPC for tests: subscribe, ACK/NACK, and await the next response of a
// type, decoded into our JSON convention. The control plane never knows it is talking to a test.

import type * as grpc from '@grpc/grpc-js';
import { createAdsClient, type AdsClient, type AdsClientStream, type DiscoveryRequest, type DiscoveryResponse } from '../../src/xds/ads-service.ts';
import { formatNodeId } from '../../src/xds/node.ts';
import { decodeAny } from '../../src/xds/protos.ts';

export interface Decoded {
  raw: DiscoveryResponse;
  version: string;
  nonce: string;
  resources: Array<Record<string, unknown>>;
}

export class TestAdsClient {
  readonly client: AdsClient;
  readonly stream: AdsClientStream;
  readonly #queues = new Map<string, DiscoveryResponse[]>();
  readonly #waiters = new Map<string, Array<(r: DiscoveryResponse) => void>>();
  readonly closed: Promise<grpc.StatusObject>;
  #first = true;
  readonly node: { id: string; metadata: Record<string, unknown> };

  constructor(address: string, who: { pod: string; namespace: string; ip: string; labels?: Record<string, string>; metadata?: Record<string, unknown> }) {
    this.node = {
      id: formatNodeId({ ip: who.ip, podName: who.pod, namespace: who.namespace }),
      metadata: { NAMESPACE: who.namespace, NAME: who.pod, INSTANCE_IPS: who.ip, ...(who.labels ? { LABELS: who.labels } : {}), ...who.metadata },
    };
    this.client = createAdsClient(address);
    this.stream = this.client.StreamAggregatedResources();
    this.stream.on('data', (r: DiscoveryResponse) => {
      const w = this.#waiters.get(r.type_url)?.shift();
      if (w) w(r);
      else {
        let q = this.#queues.get(r.type_url);
        if (!q) this.#queues.set(r.type_url, (q = []));
        q.push(r);
      }
    });
    this.closed = new Promise((resolve) => {
      this.stream.on('status', resolve);
      this.stream.on('error', () => undefined);
    });
  }

  send(req: DiscoveryRequest): void {
    if (this.#first) {
      req = { ...req, node: this.node };
      this.#first = false;
    }
    this.stream.write(req);
  }

  subscribe(typeUrl: string, names: string[] = []): void {
    this.send({ type_url: typeUrl, resource_names: names });
  }

  ack(r: Decoded, names: string[] = []): void {
    this.send({ type_url: r.raw.type_url, version_info: r.version, response_nonce: r.nonce, resource_names: names });
  }

  /** The next response of a type (waits up to `ms`, then rejects). */
  async next(typeUrl: string, ms = 10_000): Promise<Decoded> {
    const q = this.#queues.get(typeUrl);
    const raw = q?.shift() ?? (await new Promise<DiscoveryResponse>((resolve, reject) => {
      let list = this.#waiters.get(typeUrl);
      if (!list) this.#waiters.set(typeUrl, (list = []));
      const timer = setTimeout(() => {
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        reject(new Error(`no ${typeUrl} response within ${ms} ms`));
      }, ms);
      const done = (r: DiscoveryResponse): void => {
        clearTimeout(timer);
        resolve(r);
      };
      list.push(done);
    }));
    return { raw, version: raw.version_info, nonce: raw.nonce, resources: raw.resources.map((a) => decodeAny(a)) };
  }

  /** Responses of a type already received and not yet consumed. */
  pending(typeUrl: string): number {
    return this.#queues.get(typeUrl)?.length ?? 0;
  }

  close(): void {
    this.stream.end();
    this.client.close();
  }
}
