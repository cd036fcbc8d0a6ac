/**
 * Measures the two SecAgg+ mask PRGs (AES-256-CTR via WebCrypto, XSalsa20 in TypeScript) in Node and
 * prints MB/s per vector size. Run: `npx tsx scripts/bench/secagg-prg.ts [--json]`. The default PRG in
 * shared/secagg/prg.ts is the faster one here; the Chromium measurement is still to be done.
 */
import { aesCtrPrg, DEFAULT_PRG, xsalsa20Prg, type MaskPrg } from '../../shared/secagg/prg.ts';
import { cryptoRandomSource } from '../../shared/secagg/random.ts';

const SIZES = [10_000, 100_000, 1_000_000];
const MIN_SECONDS = 0.5;

async function measure(prg: MaskPrg, words: number): Promise<number> {
  const seed = cryptoRandomSource(new Uint8Array(32));
  await prg.expand(seed, words);
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < MIN_SECONDS * 1000) {
    await prg.expand(seed, words);
    bytes += words * 4;
  }
  return bytes / 1e6 / ((performance.now() - start) / 1000);
}

const rows: { prg: string; words: number; mbPerSecond: number }[] = [];
for (const words of SIZES) {
  for (const prg of [aesCtrPrg, xsalsa20Prg]) rows.push({ prg: prg.name, words, mbPerSecond: await measure(prg, words) });
}
const best = (name: string) => Math.max(...rows.filter((r) => r.prg === name).map((r) => r.mbPerSecond));
const faster = best('aes-ctr') >= best('xsalsa20') ? 'aes-ctr' : 'xsalsa20';
if (process.argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ node: process.version, rows, faster, default: DEFAULT_PRG }, null, 2)}\n`);
} else {
  process.stdout.write(`Mask PRG throughput in Node ${process.version} (MB of mask per second)\n\n`);
  process.stdout.write('| P (words) | aes-ctr MB/s | xsalsa20 MB/s |\n|---:|---:|---:|\n');
  for (const words of SIZES) {
    const get = (name: string) => rows.find((r) => r.prg === name && r.words === words)!.mbPerSecond.toFixed(0);
    process.stdout.write(`| ${words.toLocaleString('en')} | ${get('aes-ctr')} | ${get('xsalsa20')} |\n`);
  }
  process.stdout.write(`\nfaster here: ${faster}; default in shared/secagg/prg.ts: ${DEFAULT_PRG}\n`);
}
