/**
 * A shop's public catalogue (categories, their taxonomy and list prices) read from CSV or JSON,
 * and the initial model vocabulary built from it alone. This is what a production coordinator
 * starts from instead of shoppers' events: everything here is already on the shop's own pages, so
 * building the vocabulary on the server reveals nothing about any shopper. The format and the
 * rules are documented in docs/catalog.md.
 */
import { z } from 'zod';
import { MAX_PLAUSIBLE_PRICE } from './events.ts';
import { logPrice, VocabularySchema } from './vocabulary.ts';
import type { Vocabulary } from './vocabulary.ts';

export const CATALOG_COLUMNS = ['category', 'parent', 'price', 'name'] as const;
export type CatalogColumn = (typeof CATALOG_COLUMNS)[number];

/** Rows (products or category declarations) a catalogue may hold; beyond it the file is refused, not cut. */
export const MAX_CATALOG_ROWS = 1_000_000;
/** Distinct categories a catalogue may hold: ample for any shop, small enough for one analytics round to count over. */
export const MAX_CATALOG_CATEGORIES = 100_000;
/** Same bound as an event's category id (shared/features/events.ts), so every catalogue id can appear on an event. */
export const MAX_CATEGORY_ID_LENGTH = 128;
export const MAX_CATEGORY_NAME_LENGTH = 200;
/** Errors listed in a CatalogError's message; the rest are counted. */
export const MAX_LISTED_ISSUES = 20;

/**
 * The vocabulary's price normalisation and spending bounds when no row lists a price: the
 * defaults buildVocabulary (shared/features/vocabulary.ts) gives a dataset without prices, so the
 * two sources agree. They carry no information; docs/catalog.md says to list prices.
 */
export const NO_PRICE_LOG_MEAN = 0;
export const NO_PRICE_LOG_STD = 1;

/** Same grammar as the events importer's numbers: no hex, no `Infinity`, no thousands separators. */
const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const CategoryIdSchema = z
  .union([z.string(), z.int()], { error: 'expected a string or an integer' })
  .transform(String)
  .pipe(
    z
      .string()
      .min(1, { error: 'expected a non-empty id' })
      .max(MAX_CATEGORY_ID_LENGTH, { error: `expected at most ${MAX_CATEGORY_ID_LENGTH} characters` })
      // Events' category ids are compared exactly, so " c1" would never match "c1": refused, not trimmed.
      .refine((id) => id.trim() === id, { error: 'expected no leading or trailing whitespace' }),
  );

/** One row as the catalogue gives it, after empty CSV cells and JSON nulls are dropped. */
export const CatalogRowSchema = z
  .object({
    category: CategoryIdSchema,
    parent: CategoryIdSchema.optional(),
    price: z
      .union([z.number(), z.string().trim().regex(NUMBER_PATTERN).transform(Number)], { error: 'expected a number' })
      .pipe(
        z
          .number({ error: 'expected a finite number' })
          .min(0, { error: 'expected a number >= 0' })
          // Event cleaning drops prices above this as absurd; a list price past it would skew the scale the same way.
          .max(MAX_PLAUSIBLE_PRICE, { error: `expected at most ${MAX_PLAUSIBLE_PRICE} (MAX_PLAUSIBLE_PRICE)` }),
      )
      .optional(),
    name: z.string({ error: 'expected a string' }).min(1, { error: 'expected a non-empty name' }).max(MAX_CATEGORY_NAME_LENGTH, { error: `expected at most ${MAX_CATEGORY_NAME_LENGTH} characters` }).optional(),
  })
  .strict();

export type CatalogRow = z.output<typeof CatalogRowSchema>;

export type CatalogFormat = 'csv' | 'json';

export interface CatalogCategory {
  id: string;
  parent?: string;
  /** Display name; the vocabulary uses ids only. */
  name?: string;
  /** Rows of this category with a list price: its products. */
  products: number;
  /** Where it first appears: a CSV line (header = 1) or a JSON array index. */
  firstAt: number;
}

export interface ShopCatalog {
  format: CatalogFormat;
  /** Every category, in order of first appearance. */
  categories: readonly CatalogCategory[];
  /** Every list price, one per priced row. */
  prices: readonly number[];
  rows: number;
}

export interface CatalogIssue {
  /** CSV line (the header is line 1), or JSON array index. */
  line?: number;
  index?: number;
  reason: string;
}

/** A refused catalogue: every error found (the first MAX_LISTED_ISSUES listed in the message, the rest counted). */
export class CatalogError extends RangeError {
  constructor(
    readonly issues: readonly CatalogIssue[],
    readonly count: number,
  ) {
    const listed = issues.map((i) => `  ${issueWhere(i)}${i.reason}`);
    if (count > issues.length) listed.push(`  and ${count - issues.length} more`);
    super(`catalog refused, ${count} error${count === 1 ? '' : 's'}:\n${listed.join('\n')}`);
    this.name = 'CatalogError';
  }
}

function issueWhere(issue: CatalogIssue): string {
  if (issue.line !== undefined) return `line ${issue.line}: `;
  if (issue.index !== undefined) return `index ${issue.index}: `;
  return '';
}

class IssueList {
  readonly listed: CatalogIssue[] = [];
  count = 0;

  add(issue: CatalogIssue): void {
    this.count++;
    if (this.listed.length < MAX_LISTED_ISSUES) this.listed.push(issue);
  }

  throwIfAny(): void {
    // The taxonomy is checked after all rows: sorting puts its errors among the others by line.
    const position = (i: CatalogIssue) => i.line ?? i.index ?? -1;
    if (this.count > 0) throw new CatalogError([...this.listed].sort((a, b) => position(a) - position(b)), this.count);
  }
}

/** `[` or `{` first (after a BOM and blanks) is JSON; anything else is CSV. */
export function detectCatalogFormat(text: string): CatalogFormat {
  const first = stripBom(text).trimStart()[0];
  return first === '[' || first === '{' ? 'json' : 'csv';
}

/** Parses and validates a whole catalogue; throws one CatalogError listing every bad row. */
export function parseCatalog(text: string, format?: CatalogFormat): ShopCatalog {
  if (typeof text !== 'string') throw new TypeError(`"text" expected a string, got ${typeof text}`);
  format ??= detectCatalogFormat(text);
  if (format !== 'csv' && format !== 'json') throw new RangeError(`"format" expected "csv" or "json", got ${JSON.stringify(format)}`);
  const builder = new CatalogBuilder(format);
  if (format === 'csv') readCsvRows(stripBom(text), builder);
  else readJsonRows(stripBom(text), builder);
  return builder.finish();
}

function stripBom(text: string): string {
  // Spreadsheet exports often start with a byte-order mark, which would otherwise glue onto the first column's name.
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Collects rows into categories, checking what one row alone cannot show: conflicts, duplicates, caps, the taxonomy. */
class CatalogBuilder {
  readonly issues = new IssueList();
  private readonly categories = new Map<string, CatalogCategory>();
  /** Where each category was declared by a row without a price (a declaration comes once). */
  private readonly declaredAt = new Map<string, number>();
  /** Where each category's parent was given, to point the taxonomy errors at that row. */
  private readonly parentAt = new Map<string, number>();
  private readonly prices: number[] = [];
  private rows = 0;
  private categoryCapHit = false;

  constructor(readonly format: CatalogFormat) {}

  at(position: number): Pick<CatalogIssue, 'line' | 'index'> {
    return this.format === 'csv' ? { line: position } : { index: position };
  }

  private where(position: number): string {
    return this.format === 'csv' ? `line ${position}` : `index ${position}`;
  }

  issue(position: number, reason: string): void {
    this.issues.add({ ...this.at(position), reason });
  }

  /** False once the row cap is passed: the reader stops there. */
  row(position: number, raw: Record<string, unknown>): boolean {
    this.rows++;
    if (this.rows > MAX_CATALOG_ROWS) {
      this.issue(position, `more than ${MAX_CATALOG_ROWS} rows (MAX_CATALOG_ROWS); the rest of the catalog was not read`);
      return false;
    }
    const parsed = CatalogRowSchema.safeParse(raw);
    if (!parsed.success) {
      this.issue(position, describeRowIssues(parsed.error.issues, raw));
      return true;
    }
    this.add(position, parsed.data);
    return true;
  }

  private add(position: number, row: CatalogRow): void {
    let category = this.categories.get(row.category);
    if (!category) {
      if (this.categories.size >= MAX_CATALOG_CATEGORIES) {
        if (!this.categoryCapHit) this.issue(position, `more than ${MAX_CATALOG_CATEGORIES} categories (MAX_CATALOG_CATEGORIES)`);
        this.categoryCapHit = true;
        return;
      }
      category = { id: row.category, products: 0, firstAt: position };
      this.categories.set(row.category, category);
    }
    if (row.price === undefined) {
      const earlier = this.declaredAt.get(row.category);
      if (earlier !== undefined) {
        this.issue(position, `duplicate: category ${JSON.stringify(row.category)} is declared without a price again (first at ${this.where(earlier)}); a row without a price declares a category once`);
        return;
      }
      this.declaredAt.set(row.category, position);
    }
    if (row.parent !== undefined) {
      if (category.parent !== undefined && category.parent !== row.parent) {
        this.issue(position, `"parent" ${JSON.stringify(row.parent)} conflicts with parent ${JSON.stringify(category.parent)} of category ${JSON.stringify(row.category)} at ${this.where(this.parentAt.get(row.category) as number)}`);
        return;
      }
      if (category.parent === undefined) {
        category.parent = row.parent;
        this.parentAt.set(row.category, position);
      }
    }
    if (row.name !== undefined) {
      if (category.name !== undefined && category.name !== row.name) {
        this.issue(position, `"name" ${JSON.stringify(row.name)} conflicts with name ${JSON.stringify(category.name)} of category ${JSON.stringify(row.category)}`);
        return;
      }
      category.name = row.name;
    }
    if (row.price !== undefined) {
      category.products++;
      this.prices.push(row.price);
    }
  }

  finish(): ShopCatalog {
    if (this.issues.count === 0 && this.categories.size === 0) this.issues.add({ reason: 'the catalog lists no categories' });
    this.checkTaxonomy();
    this.issues.throwIfAny();
    return { format: this.format, categories: [...this.categories.values()], prices: this.prices, rows: this.rows };
  }

  /** Every parent is a category of this catalogue, and following parents never comes back round. */
  private checkTaxonomy(): void {
    for (const category of this.categories.values()) {
      const parent = category.parent;
      if (parent === undefined) continue;
      const position = this.parentAt.get(category.id) as number;
      if (parent === category.id) this.issue(position, `"parent" of category ${JSON.stringify(category.id)} is the category itself`);
      else if (!this.categories.has(parent)) this.issue(position, `"parent" ${JSON.stringify(parent)} is not a category of this catalog`);
    }
    // Cycles longer than one: walk each chain once, colouring nodes (0 unseen, 1 on the current walk, 2 done).
    const state = new Map<string, 1 | 2>();
    for (const start of this.categories.values()) {
      const path: string[] = [];
      let id: string | undefined = start.id;
      while (id !== undefined && !state.has(id)) {
        state.set(id, 1);
        path.push(id);
        const parent: string | undefined = this.categories.get(id)?.parent;
        id = parent !== undefined && parent !== id ? parent : undefined;
      }
      if (id !== undefined && state.get(id) === 1) {
        const cycle = [...path.slice(path.indexOf(id)), id];
        this.issue(this.parentAt.get(cycle[0] as string) as number, `"parent" makes a cycle: ${cycle.map((c) => JSON.stringify(c)).join(' -> ')}`);
      }
      for (const done of path) state.set(done, 2);
    }
  }
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** One reason per field, naming it and the value it had: `"price" expected a number >= 0, got "-3"`. */
function describeRowIssues(issues: readonly z.core.$ZodIssue[], raw: Record<string, unknown>): string {
  const reasons: string[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) reasons.push(`unknown field ${JSON.stringify(key)} (fields: ${CATALOG_COLUMNS.join(', ')})`);
      continue;
    }
    const field = String(issue.path[0] ?? '');
    if (seen.has(field)) continue;
    seen.add(field);
    reasons.push(raw[field] === undefined ? `"${field}" is required` : `"${field}" ${issue.message}, got ${show(raw[field])}`);
  }
  return reasons.join('; ');
}

const COMMA = 0x2c;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

type CsvRecord = { line: number; cells: string[]; fault?: string };

function lineBreaks(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) n++;
  }
  return n;
}

/**
 * RFC 4180 records: fields separated by commas, a field in double quotes may hold commas, line
 * breaks and doubled quotes. `line` is where the record starts (1-based), so a quoted line break
 * does not shift the lines of the rows after it. A badly quoted record carries a `fault` and
 * the reader goes on at the next record; an unclosed quote ends the file.
 */
function* csvRecords(text: string): Generator<CsvRecord> {
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const record: CsvRecord = { line, cells: [] };
    let quoted = false;
    for (;;) {
      let cell = '';
      if (text.charCodeAt(i) === QUOTE) {
        quoted = true;
        let j = i + 1;
        for (;;) {
          const close = text.indexOf('"', j);
          if (close < 0) {
            yield { line: record.line, cells: [], fault: 'a quoted field is never closed (the rest of the file was not read)' };
            return;
          }
          const chunk = text.slice(j, close);
          line += lineBreaks(chunk);
          cell += chunk;
          if (text.charCodeAt(close + 1) === QUOTE) {
            cell += '"';
            j = close + 2;
          } else {
            j = close + 1;
            break;
          }
        }
        i = j;
        const next = text.charCodeAt(i);
        if (i < n && next !== COMMA && next !== LF && next !== CR) {
          record.fault ??= 'text after a closing quote (a quoted field ends at its closing quote)';
          while (i < n && text.charCodeAt(i) !== COMMA && text.charCodeAt(i) !== LF && text.charCodeAt(i) !== CR) i++;
        }
      } else {
        let j = i;
        for (; j < n; j++) {
          const c = text.charCodeAt(j);
          if (c === COMMA || c === LF || c === CR) break;
        }
        cell = text.slice(i, j);
        if (cell.includes('"')) record.fault ??= 'a quote inside an unquoted field (quote the whole field, and double each quote inside it)';
        i = j;
      }
      record.cells.push(cell);
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      if (c === CR) i += text.charCodeAt(i + 1) === LF ? 2 : 1;
      else if (c === LF) i++;
      line++;
      break;
    }
    const blank = record.cells.length === 1 && record.cells[0] === '' && !quoted;
    if (!blank) yield record;
  }
}

function readCsvRows(text: string, builder: CatalogBuilder): void {
  const records = csvRecords(text);
  // next(), not a for-of with break: breaking out would close the generator before the rows.
  const first = records.next();
  if (first.done) return;
  const header = first.value;
  if (header.fault !== undefined) {
    builder.issue(header.line, `header: ${header.fault}`);
    return;
  }
  const columns = header.cells.map((c) => c.trim());
  const known = new Set<string>(CATALOG_COLUMNS);
  columns.forEach((column, i) => {
    if (!known.has(column)) builder.issue(header.line, `unknown column ${JSON.stringify(column)} (columns: ${CATALOG_COLUMNS.join(', ')})`);
    else if (columns.indexOf(column) !== i) builder.issue(header.line, `duplicate column ${JSON.stringify(column)}`);
  });
  if (!columns.includes('category')) builder.issue(header.line, `no "category" column (the header row names the columns: ${CATALOG_COLUMNS.join(', ')})`);
  // Rows cannot be read against a header that is wrong.
  if (builder.issues.count > 0) return;
  for (const record of records) {
    if (record.fault !== undefined) {
      builder.issue(record.line, record.fault);
      continue;
    }
    if (record.cells.length !== columns.length) {
      builder.issue(record.line, `expected ${columns.length} cells (as the header has), got ${record.cells.length}`);
      continue;
    }
    const raw: Record<string, unknown> = {};
    columns.forEach((column, i) => {
      const cell = record.cells[i] as string;
      // An empty optional cell is an absent value; an empty category stays, to be refused as such.
      if (cell !== '' || column === 'category') raw[column] = cell;
    });
    if (!builder.row(record.line, raw)) return;
  }
}

function readJsonRows(text: string, builder: CatalogBuilder): void {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    builder.issues.add({ reason: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` });
    return;
  }
  let entries: unknown[];
  if (Array.isArray(document)) entries = document;
  else if (isPlainObject(document) && Array.isArray(document.categories)) {
    const extra = Object.keys(document).filter((k) => k !== 'categories');
    if (extra.length > 0) builder.issues.add({ reason: `unknown top-level field${extra.length === 1 ? '' : 's'} ${extra.map((k) => JSON.stringify(k)).join(', ')} (expected an array of rows or {"categories": [rows]})` });
    entries = document.categories;
  } else {
    builder.issues.add({ reason: 'expected an array of rows or {"categories": [rows]}' });
    return;
  }
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index];
    if (!isPlainObject(entry)) {
      builder.issue(index, `expected an object with "category", got ${show(entry)}`);
      continue;
    }
    const raw: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) if (value !== null || key === 'category') raw[key] = value;
    if (!builder.row(index, raw)) return;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every category id, in catalogue order: what DP analytics rounds count over. */
export function catalogCategoryIds(catalog: ShopCatalog): string[] {
  return catalog.categories.map((c) => c.id);
}

export interface CatalogVocabularyOptions {
  topK: number;
  hashBuckets: number;
}

/**
 * Ids in the order the vocabulary takes them: most products first; at equal counts leaves before
 * categories with children (products, and so events, usually carry the most specific category);
 * then catalogue order. A catalogue without prices is therefore taken leaves first, in its order.
 */
export function rankCatalogCategories(catalog: ShopCatalog): string[] {
  const parents = new Set(catalog.categories.flatMap((c) => (c.parent === undefined ? [] : [c.parent])));
  return catalog.categories
    .map((c, order) => ({ id: c.id, products: c.products, inner: parents.has(c.id) ? 1 : 0, order }))
    .sort((a, b) => b.products - a.products || a.inner - b.inner || a.order - b.order)
    .map((c) => c.id);
}

/**
 * The initial model's vocabulary from public catalogue data only. Popularity is the add-one
 * smoothed product share (uniform when no prices are listed): a prior, positive for every
 * category since feature extraction takes its log (shared/features/extract.ts), to be replaced
 * by event popularity from a DP analytics round. Price normalisation and the spending bounds
 * (tertiles, with buildVocabulary's quantile rule) come from the list prices' log1p, weighted per
 * product rather than per purchase.
 */
export function catalogVocabulary(catalog: ShopCatalog, options: CatalogVocabularyOptions): Vocabulary {
  const { topK, hashBuckets } = options;
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`"topK" expected an integer >= 1, got ${topK}`);
  if (!Number.isInteger(hashBuckets) || hashBuckets < 1 || hashBuckets > 64) throw new RangeError(`"hashBuckets" expected an integer in 1..64, got ${hashBuckets}`);
  if (catalog.categories.length === 0) throw new RangeError('"catalog" expected at least one category, got none');
  const categories = rankCatalogCategories(catalog).slice(0, topK);
  const products = new Map(catalog.categories.map((c) => [c.id, c.products]));
  const smoothedTotal = catalog.prices.length + catalog.categories.length;
  const popularity = categories.map((id) => ((products.get(id) ?? 0) + 1) / smoothedTotal);
  const logs = catalog.prices.map(logPrice).sort((a, b) => a - b);
  let logPriceMean = NO_PRICE_LOG_MEAN;
  let logPriceStd = NO_PRICE_LOG_STD;
  let spendingBounds: [number, number] = [NO_PRICE_LOG_MEAN, NO_PRICE_LOG_MEAN];
  if (logs.length > 0) {
    logPriceMean = logs.reduce((s, x) => s + x, 0) / logs.length;
    const variance = logs.reduce((s, x) => s + (x - logPriceMean) ** 2, 0) / logs.length;
    // One list price (or all equal) has no spread to scale by; 1 leaves log prices merely centred.
    logPriceStd = variance > 1e-12 ? Math.sqrt(variance) : 1;
    const quantile = (q: number) => logs[Math.min(logs.length - 1, Math.floor(q * logs.length))] as number;
    spendingBounds = [quantile(1 / 3), quantile(2 / 3)];
  }
  return VocabularySchema.parse({ categories, hashBuckets, popularity, logPriceMean, logPriceStd, spendingBounds });
}
