/**
 * The shop catalogue reader and its vocabulary (shared/features/shop-catalog.ts): CSV (quoting,
 * line breaks in quotes, CRLF, BOM) and JSON, every kind of refused row with the line or index
 * it names, the error list's cap, and a vocabulary that passes VocabularySchema with its ranking,
 * popularity prior and price tertiles worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import type { BehaviourEvent } from '../../../shared/features/events.ts';
import { MAX_PLAUSIBLE_PRICE } from '../../../shared/features/events.ts';
import { extractFeatures, featureContext } from '../../../shared/features/extract.ts';
import { CatalogError, catalogCategoryIds, catalogVocabulary, detectCatalogFormat, MAX_CATALOG_CATEGORIES, MAX_CATALOG_ROWS, MAX_LISTED_ISSUES, NO_PRICE_LOG_MEAN, NO_PRICE_LOG_STD, parseCatalog, rankCatalogCategories } from '../../../shared/features/shop-catalog.ts';
import type { ShopCatalog } from '../../../shared/features/shop-catalog.ts';
import { VocabularySchema } from '../../../shared/features/vocabulary.ts';

/** The CatalogError a catalogue is refused with. */
function refusal(text: string, format?: 'csv' | 'json'): CatalogError {
  try {
    parseCatalog(text, format);
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogError);
    expect(err).toBeInstanceOf(RangeError);
    return err as CatalogError;
  }
  throw new Error('the catalog was accepted');
}

/** The one reason a CSV catalogue is refused for, with its line. */
function csvRefusal(text: string): { line: number | undefined; reason: string } {
  const err = refusal(text, 'csv');
  expect(err.count).toBe(1);
  const [issue] = err.issues;
  return { line: issue?.line, reason: issue?.reason ?? '' };
}

describe('parseCatalog: CSV', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF, a BOM and blank lines', () => {
    const text = '\ufeffcategory, parent ,price,name\r\n' + 'shoes,,,"Shoes, all kinds"\r\n' + '\r\n' + 'sneakers,shoes,59.9,\r\n' + '"boots",shoes," 120 ","Boots ""winter""\r\nedition"\r\n' + 'sneakers,,79,\r\n';
    const catalog = parseCatalog(text);
    expect(catalog.format).toBe('csv');
    expect(catalog.rows).toBe(4);
    expect(catalog.categories).toEqual([
      { id: 'shoes', name: 'Shoes, all kinds', products: 0, firstAt: 2 },
      { id: 'sneakers', parent: 'shoes', products: 2, firstAt: 4 },
      { id: 'boots', parent: 'shoes', name: 'Boots "winter"\r\nedition', products: 1, firstAt: 5 },
    ]);
    expect(catalog.prices).toEqual([59.9, 120, 79]);
  });

  it('counts lines from where a record starts, so a quoted line break does not shift later rows', () => {
    const { line } = csvRefusal('category,name\na,"two\nlines"\nb,"three\nmore\nlines"\n,x\n');
    expect(line).toBe(7);
  });

  it('takes a category column alone, and trailing empty optional cells as absent', () => {
    expect(catalogCategoryIds(parseCatalog('category\nc1\nc2\nc3'))).toEqual(['c1', 'c2', 'c3']);
    expect(parseCatalog('category,price,parent,name\nc1,,,\n').categories).toEqual([{ id: 'c1', products: 0, firstAt: 2 }]);
  });

  it.each([
    ['an empty category', 'category,price\nok,1\n,2\n', 3, '"category" expected a non-empty id, got ""'],
    ['a category with outer spaces', 'category\n c1\n', 2, '"category" expected no leading or trailing whitespace, got " c1"'],
    ['a category id too long', `category\n${'x'.repeat(129)}\n`, 2, '"category" expected at most 128 characters'],
    ['a negative price', 'category,price\nc1,-1\n', 2, '"price" expected a number >= 0, got "-1"'],
    ['a non-finite price', 'category,price\nc1,1e400\n', 2, '"price" expected a finite number, got "1e400"'],
    ['a price that is no number', 'category,price\nc1,NaN\nc2,3\n', 2, '"price" expected a number, got "NaN"'],
    ['an implausible price', `category,price\nc1,${MAX_PLAUSIBLE_PRICE + 1}\n`, 2, `"price" expected at most ${MAX_PLAUSIBLE_PRICE}`],
    ['an unknown column', 'category,colour\nc1,red\n', 1, 'unknown column "colour" (columns: category, parent, price, name)'],
    ['a duplicate column', 'category,price,price\nc1,1,2\n', 1, 'duplicate column "price"'],
    ['no category column', 'name,price\nShoes,1\n', 1, 'no "category" column'],
    ['a parent that is not a category', 'category,parent\nc1,\nc2,c9\n', 3, '"parent" "c9" is not a category of this catalog'],
    ['a category its own parent', 'category,parent\nc1,c1\n', 2, '"parent" of category "c1" is the category itself'],
    ['a taxonomy cycle', 'category,parent\nroot,\na,b\nb,c\nc,a\n', 3, '"parent" makes a cycle: "a" -> "b" -> "c" -> "a"'],
    ['a conflicting parent', 'category,parent,price\nroot,,\nother,,\nc1,root,1\nc1,other,2\n', 5, '"parent" "other" conflicts with parent "root" of category "c1" at line 4'],
    ['a conflicting name', 'category,name,price\nc1,Shoes,1\nc1,Boots,2\n', 3, '"name" "Boots" conflicts with name "Shoes" of category "c1"'],
    ['a duplicate declaration', 'category,price\nc1,\nc2,5\nc1,\n', 4, 'duplicate: category "c1" is declared without a price again (first at line 2)'],
    ['the wrong number of cells', 'category,price\nc1,1,extra\n', 2, 'expected 2 cells (as the header has), got 3'],
    ['a quote inside an unquoted field', 'category\nc"1\n', 2, 'a quote inside an unquoted field'],
    ['text after a closing quote', 'category\n"c1"x\n', 2, 'text after a closing quote'],
    ['a quote never closed', 'category\nc1\n"c2\nc3\n', 3, 'a quoted field is never closed'],
  ])('refuses %s, naming its line', (_kind, text, line, reason) => {
    const refused = csvRefusal(text);
    expect(refused.line).toBe(line);
    expect(refused.reason).toContain(reason);
  });

  it('lists every bad row in one error, up to MAX_LISTED_ISSUES, and counts the rest', () => {
    const bad = Array.from({ length: MAX_LISTED_ISSUES + 5 }, (_, i) => `c${i},-${i + 1}`);
    const err = refusal(['category,price', 'fine,1', ...bad].join('\n'));
    expect(err.count).toBe(MAX_LISTED_ISSUES + 5);
    expect(err.issues).toHaveLength(MAX_LISTED_ISSUES);
    expect(err.issues.map((i) => i.line)).toEqual(Array.from({ length: MAX_LISTED_ISSUES }, (_, i) => i + 3));
    expect(err.message).toMatch(/^catalog refused, 25 errors:\n {2}line 3: "price" expected a number >= 0, got "-1"\n/);
    expect(err.message).toMatch(/\n {2}and 5 more$/);
  });

  it('lists row errors and taxonomy errors together in line order', () => {
    const err = refusal('category,parent,price\na,zz,\nb,,-1\n');
    expect(err.issues.map((i) => i.line)).toEqual([2, 3]);
  });

  it(`refuses more than ${MAX_CATALOG_ROWS} rows and more than ${MAX_CATALOG_CATEGORIES} categories`, () => {
    const rows = `category,price\n${'c1,1\n'.repeat(MAX_CATALOG_ROWS)}c1,1\n`;
    const tooMany = csvRefusal(rows);
    expect(tooMany).toEqual({ line: MAX_CATALOG_ROWS + 2, reason: expect.stringContaining(`more than ${MAX_CATALOG_ROWS} rows`) });
    const categories = `category\n${Array.from({ length: MAX_CATALOG_CATEGORIES + 1 }, (_, i) => `c${i}`).join('\n')}\n`;
    expect(csvRefusal(categories)).toEqual({ line: MAX_CATALOG_CATEGORIES + 2, reason: expect.stringContaining(`more than ${MAX_CATALOG_CATEGORIES} categories`) });
  });

  it('refuses an empty file', () => {
    expect(refusal('').message).toContain('the catalog lists no categories');
    expect(refusal('category\n\n').message).toContain('the catalog lists no categories');
  });
});

describe('parseCatalog: JSON', () => {
  it('reads an array of rows or {"categories": [...]}, with integer ids, null as absent and numeric strings as prices', () => {
    const rows = [{ category: 'root', name: 'All', price: null }, { category: 7, parent: 'root', price: '12.5' }, { category: '7', price: 3 }];
    for (const text of [JSON.stringify(rows), JSON.stringify({ categories: rows })]) {
      const catalog = parseCatalog(text);
      expect(catalog.format).toBe('json');
      expect(catalog.categories).toEqual([
        { id: 'root', name: 'All', products: 0, firstAt: 0 },
        { id: '7', parent: 'root', products: 2, firstAt: 1 },
      ]);
      expect(catalog.prices).toEqual([12.5, 3]);
    }
  });

  it('refuses bad entries, naming each by its array index', () => {
    const err = refusal(JSON.stringify({ categories: [{ category: 'ok' }, { category: 'c1', colour: 'red' }, 5, { category: null }, { price: 2 }, { category: 'c2', price: -4 }, { category: 'c3', parent: 'nowhere' }] }));
    expect(err.issues).toEqual([
      { index: 1, reason: 'unknown field "colour" (fields: category, parent, price, name)' },
      { index: 2, reason: 'expected an object with "category", got 5' },
      { index: 3, reason: '"category" expected a string or an integer, got null' },
      { index: 4, reason: '"category" is required' },
      { index: 5, reason: '"price" expected a number >= 0, got -4' },
      { index: 6, reason: '"parent" "nowhere" is not a category of this catalog' },
    ]);
  });

  it('refuses what is not JSON or not a list of rows', () => {
    expect(refusal('[{"category": "c1"', 'json').message).toContain('not valid JSON');
    expect(refusal('{"rows": []}').message).toContain('expected an array of rows or {"categories": [rows]}');
    expect(refusal('{"categories": [{"category": "c1"}], "version": 2}').message).toContain('unknown top-level field "version"');
    expect(refusal('[]').message).toContain('the catalog lists no categories');
  });
});

describe('detectCatalogFormat and argument checks', () => {
  it('takes [ or { as JSON and anything else as CSV', () => {
    expect(detectCatalogFormat('\ufeff  [ ]')).toBe('json');
    expect(detectCatalogFormat('\n{"categories": []}')).toBe('json');
    expect(detectCatalogFormat('category\nc1')).toBe('csv');
  });

  it('names a wrong argument', () => {
    expect(() => parseCatalog(42 as unknown as string)).toThrow(new TypeError('"text" expected a string, got number'));
    expect(() => parseCatalog('category\nc1', 'xml' as 'csv')).toThrow(new RangeError('"format" expected "csv" or "json", got "xml"'));
  });
});

describe('catalogVocabulary', () => {
  const options = { topK: 50, hashBuckets: 8 };

  it('takes a category list in catalog order, leaves before categories with children, with a uniform prior and the no-price defaults', () => {
    const catalog = parseCatalog('category,parent\nclothing,\nshoes,clothing\nhats,clothing\nbags,\n');
    expect(rankCatalogCategories(catalog)).toEqual(['shoes', 'hats', 'bags', 'clothing']);
    const vocab = catalogVocabulary(catalog, options);
    expect(VocabularySchema.parse(vocab)).toEqual(vocab);
    expect(vocab).toEqual({ categories: ['shoes', 'hats', 'bags', 'clothing'], hashBuckets: 8, popularity: [0.25, 0.25, 0.25, 0.25], logPriceMean: NO_PRICE_LOG_MEAN, logPriceStd: NO_PRICE_LOG_STD, spendingBounds: [NO_PRICE_LOG_MEAN, NO_PRICE_LOG_MEAN] });
    expect(catalogCategoryIds(catalog)).toEqual(['clothing', 'shoes', 'hats', 'bags']);
  });

  it('ranks by product count (catalog order at ties), cuts at topK, and smooths the product share by one', () => {
    // a: 1 product, b: 3, c: 0, d: 3 -> b, d (tie: catalog order), a, c.
    const catalog = parseCatalog('category,price\na,1\nb,1\nb,2\nc,\nd,5\nb,3\nd,6\nd,7\n');
    const vocab = catalogVocabulary(catalog, { topK: 3, hashBuckets: 2 });
    expect(vocab.categories).toEqual(['b', 'd', 'a']);
    // (products + 1) / (7 products + 4 categories): every share positive, summing to at most 1.
    expect(vocab.popularity).toEqual([4 / 11, 4 / 11, 2 / 11]);
    expect(catalogVocabulary(catalog, { topK: 4, hashBuckets: 2 }).popularity.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 12);
    expect(catalogCategoryIds(catalog)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('normalises by the list prices\' log1p and takes their tertiles as the spending bounds', () => {
    // Nine prices 0..8, listed shuffled: sorted log1p values, tertiles at indices floor(9/3) = 3 and floor(18/3) = 6.
    const prices = [5, 0, 8, 3, 1, 7, 2, 6, 4];
    const catalog = parseCatalog(JSON.stringify(prices.map((price, i) => ({ category: `c${i % 3}`, price }))));
    const vocab = catalogVocabulary(catalog, options);
    const logs = prices.map((p) => Math.log1p(p));
    const mean = logs.reduce((s, x) => s + x, 0) / logs.length;
    const std = Math.sqrt(logs.reduce((s, x) => s + (x - mean) ** 2, 0) / logs.length);
    expect(vocab.logPriceMean).toBeCloseTo(mean, 12);
    expect(vocab.logPriceStd).toBeCloseTo(std, 12);
    expect(vocab.spendingBounds).toEqual([Math.log1p(3), Math.log1p(6)]);
    expect(VocabularySchema.safeParse(vocab).success).toBe(true);
  });

  it('scales by 1 when every list price is the same', () => {
    const vocab = catalogVocabulary(parseCatalog('category,price\na,10\nb,10\n'), options);
    expect(vocab.logPriceMean).toBeCloseTo(Math.log1p(10), 12);
    expect(vocab.logPriceStd).toBe(1);
    expect(vocab.spendingBounds).toEqual([Math.log1p(10), Math.log1p(10)]);
  });

  it('gives finite features for a shopper with no events in most categories (the prior is never 0)', () => {
    const vocab = catalogVocabulary(parseCatalog('category,price\na,1\nb,\nc,\n'), options);
    const day = 18_000;
    const history: BehaviourEvent[] = [{ userId: 'u', day, type: 'click', itemId: 'i', category: 'a', price: 1 }];
    const features = extractFeatures(history, day + 1, featureContext(vocab, day));
    expect([...features].every(Number.isFinite)).toBe(true);
  });

  it('names a wrong topK or hashBuckets', () => {
    const catalog: ShopCatalog = parseCatalog('category\na\n');
    expect(() => catalogVocabulary(catalog, { topK: 0, hashBuckets: 8 })).toThrow(new RangeError('"topK" expected an integer >= 1, got 0'));
    expect(() => catalogVocabulary(catalog, { topK: 5, hashBuckets: 65 })).toThrow(new RangeError('"hashBuckets" expected an integer in 1..64, got 65'));
    expect(() => catalogVocabulary({ ...catalog, categories: [] }, options)).toThrow(RangeError);
  });
});
