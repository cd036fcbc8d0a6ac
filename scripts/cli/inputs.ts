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
import type { ModelConfig } from '../../shared/model/spec.ts';
import { describeDroppedRows, loadEventsFile } from '../import/events-file.ts';
import { loadDataset } from '../import/resolve.ts';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { CliError, log } from './output.ts';

/** Runs a loader, naming the argument in a NOT_FOUND: the importers' own, or a raw ENOENT (model files) with its path. */
async function naming<T>(argument: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'NOT_FOUND') throw new CliError('NOT_FOUND', `"${argument}": ${err.message}`);
    if (isMissing(err)) throw new CliError('NOT_FOUND', `"${argument}": no such file or directory: ${err.path ?? '(unknown path)'}`);
    throw err;
  }
}

/** A warning on stderr listing the rows the importer dropped, by reason, so none vanish unseen. */
function warnDroppedRows(argument: string, dataset: Dataset): Dataset {
  const { rowsRead, eventsKept } = dataset.cleaning;
  const reasons = describeDroppedRows(dataset.cleaning);
  if (reasons.length > 0) log(`warning: "${argument}" ${dataset.name}: ${rowsRead} event rows read, ${eventsKept} kept; dropped rows by reason:\n${reasons.map((r) => `  ${r}`).join('\n')}`);
  return dataset;
}

function isMissing(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The text of a file argument (`--bundle`, `--batch`); one that is not there is NOT_FOUND, as every input file is. */
export function readInputFile(argument: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isMissing(err)) throw new CliError('NOT_FOUND', `"${argument}": no such file: ${path.resolve(file)}`);
    throw new CliError('INVALID_ARGUMENT', `"${argument}": cannot read ${path.resolve(file)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `--dataset synthetic:USERS | tianchi:DIR | events:FILE[:LABELS]`. */
export async function loadDatasetArg(spec: string, argument = 'dataset'): Promise<Dataset> {
  return warnDroppedRows(argument, await naming(argument, () => loadDataset(spec)));
}

/** `--events FILE` (JSONL or CSV). */
export async function loadEventsArg(file: string, argument = 'events'): Promise<Dataset> {
  return warnDroppedRows(argument, await naming(argument, () => loadEventsFile(file)));
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
  // The model store and tfjs load here, when a command reads a model, never at the CLI's start.
  const [{ openSqliteStores }, { readModelFiles }] = await Promise.all([import('../../server/storage/sqlite.ts'), import('../../server/storage/model-files.ts')]);
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
    const { loadModelDirectory } = await import('../../server/storage/model-files.ts');
    const { model, config } = await naming('model', () => loadModelDirectory(value));
    return { model, config, source: path.resolve(value) };
  }
  if (value === 'latest' || VERSION.test(value)) {
    const { version, files } = await modelVersionFromDataDir(dataDir, value);
    const { modelFromFiles } = await import('../../shared/model/artifacts.ts');
    const { model, config } = await modelFromFiles(files);
    return { model, config, source: `version ${version} of ${path.resolve(dataDir)}` };
  }
  throw new CliError('NOT_FOUND', `"model": ${path.resolve(value)} does not exist, and ${JSON.stringify(value)} is not a model version (a positive integer or "latest")`);
}
