/**
 * The device's copy of the global model: fetched over HTTP (model.json + weights.bin, standard
 * tfjs layout) only when the round names a version other than the cached one. Platform-free:
 * `fetch` is injected, so the same code runs in Node and in a browser Web Worker.
 */
import type * as tf from '@tensorflow/tfjs';
import { modelFromFiles } from '../../shared/model/artifacts.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { flattenWeights } from '../../shared/model/weights.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';

export type FetchLike = (url: string) => Promise<{ ok: boolean; status: number; json(): Promise<unknown>; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface CachedModel {
  version: number;
  config: ModelConfig;
  model: tf.LayersModel;
  weights: Float32Array;
  bytes: number;
}

export class ModelCache {
  private cached: CachedModel | null = null;
  private loading: { version: number; promise: Promise<CachedModel> } | null = null;
  fetches = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly fetchImpl: FetchLike,
  ) {}

  get current(): CachedModel | null {
    return this.cached;
  }

  /**
   * Returns the requested version, downloading it only if it is not the cached one. Concurrent
   * calls for one version share one download (a second load would dispose the first's model).
   */
  async ensure(version: number, modelUrl: string, parameters: number): Promise<{ model: CachedModel; fetched: boolean }> {
    if (this.cached?.version === version) return { model: this.cached, fetched: false };
    const inflight = this.loading?.version === version ? this.loading.promise : null;
    if (inflight) return { model: await inflight, fetched: false };
    const promise = this.load(version, modelUrl, parameters);
    this.loading = { version, promise };
    try {
      return { model: await promise, fetched: true };
    } finally {
      if (this.loading?.promise === promise) this.loading = null;
    }
  }

  private async load(version: number, modelUrl: string, parameters: number): Promise<CachedModel> {
    const jsonUrl = new URL(modelUrl, this.baseUrl);
    const jsonResponse = await this.fetchImpl(jsonUrl.href);
    if (!jsonResponse.ok) throw new ProtocolError('UNAVAILABLE', `model v${version}: HTTP ${jsonResponse.status} for model.json`);
    const modelJson = (await jsonResponse.json()) as tf.io.ModelJSON;
    const paths = modelJson.weightsManifest?.flatMap((g) => g.paths) ?? [];
    const parts: Uint8Array[] = [];
    for (const p of paths) {
      const response = await this.fetchImpl(new URL(p, jsonUrl).href);
      if (!response.ok) throw new ProtocolError('UNAVAILABLE', `model v${version}: HTTP ${response.status} for ${p}`);
      parts.push(new Uint8Array(await response.arrayBuffer()));
    }
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const weights = new Uint8Array(total);
    let offset = 0;
    for (const p of parts) {
      weights.set(p, offset);
      offset += p.byteLength;
    }
    const { model, config } = await modelFromFiles({ modelJson, weights });
    const flat = flattenWeights(model);
    if (flat.length !== parameters) {
      model.dispose();
      throw new ProtocolError('WEIGHTS_LENGTH', `model v${version} has ${flat.length} parameters, the round announced ${parameters}`);
    }
    this.cached?.model.dispose();
    this.cached = { version, config, model, weights: flat, bytes: total + JSON.stringify(modelJson).length };
    this.fetches++;
    return this.cached;
  }

  dispose(): void {
    this.cached?.model.dispose();
    this.cached = null;
  }
}
