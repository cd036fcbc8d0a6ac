/**
 * Model directories on disk in the standard tfjs layout (model.json + weights.bin), written
 * atomically: files go to a temporary sibling directory, are fsynced, and the directory is
 * renamed into place, so a crash never leaves a half-written model behind.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import { modelFromFiles, modelToFiles, WEIGHTS_FILE } from '../../shared/model/artifacts.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';

function writeSynced(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeModelFiles(dir: string, files: ModelFiles): void {
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  if (fs.existsSync(dir)) throw new Error(`refusing to overwrite the existing model directory ${dir}`);
  const staging = path.join(parent, `.${path.basename(dir)}.${randomUUID()}.tmp`);
  fs.mkdirSync(staging);
  try {
    writeSynced(path.join(staging, WEIGHTS_FILE), files.weights);
    writeSynced(path.join(staging, 'model.json'), JSON.stringify(files.modelJson));
    syncDirectory(staging);
    fs.renameSync(staging, dir);
    syncDirectory(parent);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

export function readModelFiles(dir: string): ModelFiles {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const paths = modelJson.weightsManifest.flatMap((g) => g.paths);
  const parts = paths.map((p) => {
    const resolved = path.resolve(dir, p);
    if (path.dirname(resolved) !== path.resolve(dir)) throw new RangeError(`weights path ${JSON.stringify(p)} escapes the model directory`);
    return fs.readFileSync(resolved);
  });
  const weights = new Uint8Array(Buffer.concat(parts));
  return { modelJson, weights };
}

export async function saveModelDirectory(dir: string, model: tf.LayersModel, config: ModelConfig): Promise<void> {
  writeModelFiles(dir, await modelToFiles(model, config));
}

export async function loadModelDirectory(dir: string): Promise<{ model: tf.LayersModel; config: ModelConfig }> {
  const target = fs.existsSync(path.join(dir, 'model.json')) ? dir : dir.endsWith('model.json') ? path.dirname(dir) : dir;
  return modelFromFiles(readModelFiles(target));
}
