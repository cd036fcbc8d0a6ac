/**
 * Measures the two SecAgg+ mask PRGs (AES-256-CTR via WebCrypto, XSalsa20 in TypeScript) in Node and
 * in headless Chromium (Debian's /usr/bin/chromium through playwright-core; the measuring module is
 * bundled with esbuild in-process and served from a loopback server, a secure context for WebCrypto),
 * side by side, per vector size: MB of mask per second for whole expansions and for masks added in
 * place. Writes the table as its section of docs/benchmarks.md unless --no-append.
 * Run: `npx tsx scripts/bench/secagg-prg.ts [--min-ms 400] [--no-append] [--json]`.
 */
import { DEFAULT_PRG, PRG_NAMES, type PrgName } from '../../shared/secagg/prg.ts';
import { flag, numberOption } from './args.ts';
import { openBundlePage } from './chromium-page.ts';
import { markdownTable, writeBenchmark } from './report.ts';
import { measureSecAggPrg, type PrgSample } from './secagg-prg-measure.ts';

const SIZES = [10_000, 100_000, 1_000_000];
const minMs = numberOption('--min-ms', 400);
if (minMs <= 0) throw new RangeError(`"--min-ms" expected a positive number, got ${minMs}`);

async function measureNode(): Promise<PrgSample[]> {
  const samples: PrgSample[] = [];
  for (const words of SIZES) for (const prg of PRG_NAMES) samples.push(await measureSecAggPrg(prg, words, minMs));
  return samples;
}

async function measureChromium(): Promise<{ version: string; samples: PrgSample[] }> {
  const { page, version, close } = await openBundlePage(new URL('./secagg-prg-measure.ts', import.meta.url));
  try {
    const samples: PrgSample[] = [];
    for (const words of SIZES) {
      for (const prg of PRG_NAMES) {
        samples.push(await page.evaluate(
          ([p, w, m]) => (globalThis as unknown as { measureSecAggPrg: typeof measureSecAggPrg }).measureSecAggPrg(p, w, m),
          [prg, words, minMs] as [PrgName, number, number],
        ));
      }
    }
    return { version, samples };
  } finally {
    await close();
  }
}

const node = await measureNode();
const chromium = await measureChromium();
const get = (samples: PrgSample[], prg: PrgName, words: number) => samples.find((s) => s.prg === prg && s.words === words)!;
/** Faster where it matters for masks: the larger vectors (P >= 10^5), by mean expand throughput. */
const faster = (samples: PrgSample[]): PrgName => {
  const score = (prg: PrgName) => SIZES.filter((w) => w >= 100_000).reduce((s, w) => s + get(samples, prg, w).expandMBps, 0);
  return score('aes-ctr') >= score('xsalsa20') ? 'aes-ctr' : 'xsalsa20';
};

if (flag('--json')) {
  process.stdout.write(`${JSON.stringify({ node: process.version, chromium: chromium.version, minMs, nodeSamples: node, chromiumSamples: chromium.samples, fasterNode: faster(node), fasterChromium: faster(chromium.samples), default: DEFAULT_PRG }, null, 2)}\n`);
} else {
  const f = (v: number) => v.toFixed(0);
  const rows = SIZES.map((w) => [
    w.toLocaleString('en'),
    f(get(node, 'aes-ctr', w).expandMBps),
    f(get(node, 'xsalsa20', w).expandMBps),
    f(get(chromium.samples, 'aes-ctr', w).expandMBps),
    f(get(chromium.samples, 'xsalsa20', w).expandMBps),
    f(get(node, 'aes-ctr', w).applyMBps),
    f(get(node, 'xsalsa20', w).applyMBps),
    f(get(chromium.samples, 'aes-ctr', w).applyMBps),
    f(get(chromium.samples, 'xsalsa20', w).applyMBps),
  ]);
  const table = markdownTable(
    ['P (words)', 'Node aes-ctr expand MB/s', 'Node xsalsa20 expand MB/s', 'Chromium aes-ctr expand MB/s', 'Chromium xsalsa20 expand MB/s', 'Node aes-ctr apply MB/s', 'Node xsalsa20 apply MB/s', 'Chromium aes-ctr apply MB/s', 'Chromium xsalsa20 apply MB/s'],
    rows,
  );
  const notes = [
    `Node ${process.version}; Chromium ${chromium.version} (headless, --disable-gpu, page served from 127.0.0.1, the same esbuild-bundled measuring code as in Node). Each figure: at least ${minMs} ms of back-to-back calls, one after a warm-up call.`,
    '"expand": a fresh WebCrypto key import and the whole keystream per call (what each mask costs); "apply": the mask subtracted in place into a P-word accumulator (`applyMask`; XSalsa20 fused block by block, AES-CTR keystream then one Int32Array pass).',
    `Faster for P >= 10^5: Node ${faster(node)}, Chromium ${faster(chromium.samples)}; DEFAULT_PRG in shared/secagg/prg.ts: ${DEFAULT_PRG}.`,
  ].join('\n\n');
  if (flag('--no-append')) process.stdout.write(`${table}\n\n${notes}\n`);
  else writeBenchmark({ key: 'secagg-prg', title: 'SecAgg+ mask PRGs in Node and Chromium: AES-256-CTR (WebCrypto) vs XSalsa20 (TypeScript)', tfjsBackend: 'n/a (no tensors)', table, notes });
}
