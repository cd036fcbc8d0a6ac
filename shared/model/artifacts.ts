/**
 * Models in the standard tfjs layers format (model.json + one weights file), with the portrait
 * ModelConfig in `userDefinedMetadata.portrait`. Pure: the bytes come and go as values, so the
 * coordinator's registry, the CLI and the browser all share it.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './spec.ts';
import { ModelConfigSchema } from './spec.ts';

export const WEIGHTS_FILE = 'weights.bin';

export interface ModelFiles {
  /** model.json as an object (`modelTopology`, `weightsManifest`, `format`, `userDefinedMetadata`, ...). */
  modelJson: tf.io.ModelJSON;
  weights: Uint8Array;
}

function concatWeightData(data: tf.io.WeightData): Uint8Array {
  const buffers = Array.isArray(data) ? data : [data];
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out;
}

export async function modelToFiles(model: tf.LayersModel, config: ModelConfig): Promise<ModelFiles> {
  let files: ModelFiles | undefined;
  model.setUserDefinedMetadata({ portrait: config });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = concatWeightData(artifacts.weightData ?? new ArrayBuffer(0));
      files = {
        modelJson: {
          modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
          format: artifacts.format ?? 'layers-model',
          generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
          convertedBy: null,
          weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
          userDefinedMetadata: artifacts.userDefinedMetadata ?? {},
        },
        weights,
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  if (!files) throw new Error('tfjs did not hand over the model artifacts');
  return files;
}

export function configFromModelJson(modelJson: tf.io.ModelJSON): ModelConfig {
  const meta = modelJson.userDefinedMetadata as { portrait?: unknown } | undefined;
  return ModelConfigSchema.parse(meta?.portrait);
}

export async function modelFromFiles(files: ModelFiles): Promise<{ model: tf.LayersModel; config: ModelConfig }> {
  const config = configFromModelJson(files.modelJson);
  const manifest = files.modelJson.weightsManifest;
  const weightSpecs = manifest.flatMap((group) => group.weights);
  const buffer = files.weights.buffer.slice(files.weights.byteOffset, files.weights.byteOffset + files.weights.byteLength) as ArrayBuffer;
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: files.modelJson.modelTopology,
      weightSpecs,
      weightData: buffer,
      format: files.modelJson.format,
      generatedBy: files.modelJson.generatedBy,
    }),
  );
  return { model, config };
}
