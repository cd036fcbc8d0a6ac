/**
 * `portrait model export V --out DIR`: copies model version V (or `latest`) in the standard tfjs
 * layout (model.json + weights.bin), from a coordinator over HTTP (`--server`) or from a local
 * data directory (default ./data, which must exist), written atomically; an existing --out is
 * refused before anything is read.
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Command } from 'commander';
import type { ModelFiles } from '../../shared/model/artifacts.ts';
import type { ModelAnnouncement } from '../../shared/protocol/messages.ts';
import { DEFAULT_DATA_DIR, DEFAULT_SERVER } from './api-client.ts';
import { checkModelVersion, modelVersionFromDataDir } from './inputs.ts';
import { action, CliError, emit } from './output.ts';
import { registerServingCommands } from './model-serving.ts';

interface ExportOptions {
  out: string;
  server?: string;
  dataDir: string;
  json?: boolean;
}

async function fetchOk(url: URL): Promise<Response> {
  const res = await fetch(url).catch((err: unknown) => {
    throw new CliError('UNAVAILABLE', `cannot reach ${url.origin}: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (res.status === 404) throw new CliError('NOT_FOUND', `${url.pathname} not found`);
  if (!res.ok) throw new CliError('INTERNAL', `${url.pathname}: HTTP ${res.status}`);
  return res;
}

async function fromServer(server: string, version: string): Promise<{ version: number; files: ModelFiles }> {
  const v = version === 'latest' ? ((await (await fetchOk(new URL('/models/current', server))).json()) as ModelAnnouncement).version : Number(version);
  const modelJson = (await (await fetchOk(new URL(`/models/${v}/model.json`, server))).json()) as tf.io.ModelJSON;
  const paths = modelJson.weightsManifest.flatMap((g) => g.paths);
  if (paths.length !== 1) throw new CliError('INTERNAL', `expected one weights file, got ${paths.length}`);
  const weights = new Uint8Array(await (await fetchOk(new URL(`/models/${v}/${paths[0]}`, server))).arrayBuffer());
  return { version: v, files: { modelJson, weights } };
}

function fromDataDir(dataDir: string, version: string): Promise<{ version: number; files: ModelFiles }> {
  return modelVersionFromDataDir(dataDir, version, `point --data-dir at the server's data directory, or download with --server URL, e.g. ${DEFAULT_SERVER}`);
}

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('model versions: export, bootstrap from analytics, compare, promote, roll out');
  registerServingCommands(model);
  model
    .command('export <version>')
    .description('write model version V (or "latest") as model.json + weights.bin')
    .requiredOption('--out <dir>', 'output directory (must not exist)')
    .option('--server <url>', `download from a coordinator (e.g. ${DEFAULT_SERVER})`)
    .option('--data-dir <dir>', 'or read a local server data directory', DEFAULT_DATA_DIR)
    .option('--json', 'print JSON')
    .action(
      action(async (version: string, options: ExportOptions) => {
        checkModelVersion(version);
        if (fs.existsSync(options.out)) throw new CliError('INVALID_ARGUMENT', `"out": ${path.resolve(options.out)} already exists; choose a new directory`);
        const { version: v, files } = options.server ? await fromServer(options.server, version) : await fromDataDir(options.dataDir, version);
        const [{ configFromModelJson }, { writeModelFiles }] = await Promise.all([import('../../shared/model/artifacts.ts'), import('../../server/storage/model-files.ts')]);
        const config = configFromModelJson(files.modelJson);
        writeModelFiles(options.out, files);
        emit(options, { version: v, out: path.resolve(options.out), bytes: files.weights.byteLength, architecture: config.architecture, heads: config.heads }, () =>
          `model v${v} (${config.architecture}, heads ${config.heads.join(', ')}) written to ${path.resolve(options.out)}`,
        );
      }),
    );
}
