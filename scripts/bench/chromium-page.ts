/**
 * A headless Chromium page (test/browser-harness.ts) that has loaded one esbuild bundle of a measuring
 * module, served from 127.0.0.1 (a secure context, so WebCrypto is available): the benchmarks that
 * time the same code in Node and in Chromium run it through `page.evaluate`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as esbuild from 'esbuild';
import type { Page } from 'playwright-core';
import { launchChromium } from '../../test/browser-harness.ts';

export interface BundlePage {
  readonly page: Page;
  /** Chromium's version string. */
  readonly version: string;
  close(): Promise<void>;
}

export async function openBundlePage(entry: URL): Promise<BundlePage> {
  const bundle = await esbuild.build({ entryPoints: [entry.pathname], bundle: true, format: 'iife', platform: 'browser', target: 'es2022', write: false });
  const script = bundle.outputFiles[0]!.text;
  const server = http.createServer((req, res) => {
    if (req.url === '/bench.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>bench</title><script src="/bench.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const context = await launchChromium().catch((err: unknown) => {
    server.close();
    throw err;
  });
  const close = async () => {
    try {
      await context.close();
    } finally {
      server.close();
    }
  };
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const version = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
    return { page, version, close };
  } catch (err) {
    await close().catch(() => undefined); // the first error is the one to report
    throw err;
  }
}
