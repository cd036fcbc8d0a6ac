/**
 * The CLI's input arguments that name files: dataset specs, events files, model directories or
 * versions, data directories. A path that is not there is `NOT_FOUND` naming the argument and the
 * path, never an INTERNAL with a raw ENOENT.
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../../shared/features/dataset.ts';
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import { modelFromFiles } from '../../shared/model/artifacts.ts';
import type { ModelConfig } from '../../shared/model/spec.ts';
import { loadModelDirectory, readModelFiles } from '../../server/storage/model-files.ts';
import { openSqliteStores } from '../../server/storage/sqlite.ts';
import { loadEventsFile } from '../import/events-file.ts';
import { loadDataset } from '../import/resolve.ts';
import { CliError } from './output.ts';

function isMissingFile(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR');
}

/** Runs a loader, turning "no such file" into NOT_FOUND naming the argument and the path it lacked. */
async function naming<T>(argument: string, fallbackPath: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (!isMissingFile(err)) throw err;
    throw new CliError('NOT_FOUND', `"${argument}": no such file or directory: ${err.path ?? fallbackPath}`);
  }
}

/** `--dataset synthetic:USERS | tianchi:DIR | events:FILE[:LABELS]`. */
export async function loadDatasetArg(spec: string, argument = 'dataset'): Promise<Dataset> {
  const colon = spec.indexOf(':');
  const kind = spec.slice(0, colon);
  // Name the directory or file the user gave, not the first file a loader failed to open inside it.
  const given = kind === 'tianchi' ? spec.slice(colon + 1) : kind === 'events' ? (spec.slice(colon + 1).split(':')[0] ?? '') : '';
  if (given && !fs.existsSync(given)) throw new CliError('NOT_FOUND', `"${argument}": no such ${kind === 'tianchi' ? 'directory' : 'file'}: ${path.resolve(given)}`);
  return naming(argument, spec.slice(colon + 1), () => loadDataset(spec));
}

/** `--events FILE` (JSONL or CSV). */
export async function loadEventsArg(file: string, argument = 'events'): Promise<Dataset> {
  if (!fs.existsSync(file)) throw new CliError('NOT_FOUND', `"${argument}": no such file: ${path.resolve(file)}`);
  return naming(argument, file, () => loadEventsFile(file));
}

/** A data directory that must already exist (reading it must not create an empty one). */
export function existingDataDir(dataDir: string, argument = 'data-dir', hint = "the server's --data-dir; default ./data"): string {
  const resolved = path.resolve(dataDir);
  if (!fs.existsSync(resolved)) throw new CliError('NOT_FOUND', `"${argument}": data directory ${resolved} does not exist (${hint})`);
  if (!fs.statSync(resolved).isDirectory()) throw new CliError('INVALID_ARGUMENT', `"${argument}": ${resolved} is not a directory`);
  return resolved;
}

const VERSION = /^[1-9]\d{0,15}$/;

/** A model version argument: a positive integer or `latest`. */
export function checkModelVersion(version: string): void {
  if (version !== 'latest' && !VERSION.test(version)) throw new CliError('INVALID_ARGUMENT', `"version" expected a positive integer or "latest", got ${JSON.stringify(version)}`);
}

/** Model version V (or `latest`) from a data directory's model store, as `model export` reads it. */
export async function modelVersionFromDataDir(dataDir: string, version: string, hint?: string): Promise<{ version: number; files: ModelFiles }> {
  checkModelVersion(version);
  const dir = existingDataDir(dataDir, 'data-dir', hint);
  const stores = openSqliteStores(dir);
  try {
    const record = version === 'latest' ? await stores.models.latest() : await stores.models.get(Number(version));
    if (!record) throw new CliError('NOT_FOUND', `model version ${version} not found in ${dir}`);
    return { version: record.version, files: readModelFiles(path.join(dir, 'models', String(record.version))) };
  } finally {
    stores.close();
  }
}

export interface LoadedModel {
  model: tf.LayersModel;
  config: ModelConfig;
  /** The directory it was read from, or `version V of DIR`. */
  source: string;
}

/**
 * `--model V|PATH`: an existing path is a model directory (or its model.json); otherwise a
 * positive integer or `latest` is a version in the data directory's model store.
 */
export async function loadModelArg(value: string, dataDir: string): Promise<LoadedModel> {
  if (fs.existsSync(value)) {
    const { model, config } = await naming('model', value, () => loadModelDirectory(value));
    return { model, config, source: path.resolve(value) };
  }
  if (value === 'latest' || VERSION.test(value)) {
    const { version, files } = await modelVersionFromDataDir(dataDir, value);
    const { model, config } = await modelFromFiles(files);
    return { model, config, source: `version ${version} of ${path.resolve(dataDir)}` };
  }
  throw new CliError('NOT_FOUND', `"model": ${path.resolve(value)} does not exist, and ${JSON.stringify(value)} is not a model version (a positive integer or "latest")`);
}
