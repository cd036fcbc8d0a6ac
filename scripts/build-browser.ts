/**
 * Builds the browser client bundle (build/browser/portrait.js and worker.js) and prints the sizes.
 * The coordinator also builds it on start when a source is newer, so this is only for a manual
 * rebuild or `--force`. Usage: npx tsx scripts/build-browser.ts [--force]
 */
import { buildBrowserBundle } from '../server/browser/bundle.ts';

const result = await buildBrowserBundle({ force: process.argv.includes('--force') });
process.stdout.write(`${result.built ? 'built' : 'up to date'}: ${result.dir} (portrait.js ${result.bytes.page} bytes, worker.js ${result.bytes.worker} bytes) in ${Math.round(result.ms)} ms\n`);
