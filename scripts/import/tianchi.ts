/**
 * Importer for the Tianchi CIKM 2019 EComm AI sample (../shared/data/tianchi-ecomm, as published
 * with DyHATR): tab-separated events, item features and platform-inferred user features joined
 * into one Dataset, with every dropped or repaired row counted by reason.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ZodError } from 'zod';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { MAX_PLAUSIBLE_PRICE, dateFromDay, dayFromDate, parseEvent } from '../../shared/features/events.ts';
import type { BehaviourEvent, EventType } from '../../shared/features/events.ts';
import { ageBandFromTianchiLevel } from '../../shared/features/labels.ts';
import type { ProfileLabels } from '../../shared/features/labels.ts';
import { countInto, emptyCleaningReport } from '../../shared/features/dataset.ts';
import type { Dataset } from '../../shared/features/dataset.ts';
import { assembleDataset, readLines } from './events-file.ts';

export const TIANCHI_FILES = {
  events: 'ecomm_edge_train.txt',
  items: 'ecomm_item_feature.txt',
  users: 'ecomm_user_feature.txt',
} as const;

/** The edge file's type column (readme.txt: 1 clk, 2 collect, 3 cart, 4 buy). */
export const TIANCHI_EVENT_TYPES: Readonly<Record<string, EventType>> = { '1': 'click', '2': 'favourite', '3': 'cart', '4': 'buy' };

type PriceProblem = 'missingPrice' | 'nonPositivePrice' | 'absurdPrice';

interface TianchiItem {
  category: string;
  brand?: string;
  price?: number;
  priceProblem?: PriceProblem;
}

/** Raw lines of the three files; each file's lines in file order. */
export interface TianchiLines {
  events: Iterable<string>;
  items: Iterable<string>;
  users: Iterable<string>;
}

/** -1 and the empty cell are the user file's "unknown"; anything else outside a domain is invalid. */
function isUnknownCode(cell: string): boolean {
  return cell === '' || cell === '-1';
}

function integerIn(cell: string, min: number, max: number): number | undefined {
  if (!/^-?\d+$/.test(cell)) return undefined;
  const n = Number(cell);
  return n >= min && n <= max ? n : undefined;
}

/**
 * Labels of one user_feature row (user, pred_gender, pred_age_level, education, pred_career_type,
 * income, pred_stage) in labels.ts's canonical encoding, plus how many values were invalid.
 * Education and income have no label head and are ignored.
 */
export function labelsFromTianchiUserRow(fields: readonly string[]): { labels: ProfileLabels; invalid: number } {
  const [, genderCell = '', ageCell = '', , careerCell = '', , stageCell = ''] = fields;
  const labels: ProfileLabels = {};
  let invalid = 0;
  if (!isUnknownCode(genderCell)) {
    const gender = integerIn(genderCell, 0, 1);
    if (gender === undefined) invalid += 1;
    else labels.gender = gender;
  }
  if (!isUnknownCode(ageCell)) {
    const level = integerIn(ageCell, 0, 9);
    const age = level === undefined ? undefined : ageBandFromTianchiLevel(level);
    if (age === undefined) invalid += 1;
    else labels.age = age;
  }
  if (!isUnknownCode(careerCell)) {
    const career = integerIn(careerCell, 1, 10);
    if (career === undefined) invalid += 1;
    else labels.career = career - 1;
  }
  if (!isUnknownCode(stageCell)) {
    const stages = stageCell.split(',').map((s) => integerIn(s.trim(), 1, 10));
    if (stages.some((s) => s === undefined)) invalid += 1;
    else labels.stage = [...new Set(stages as number[])].map((s) => s - 1).sort((a, b) => a - b);
  }
  return { labels, invalid };
}

function itemFromFields(fields: readonly string[]): TianchiItem {
  const [, , category = '', brand = '', priceCell = ''] = fields;
  const item: TianchiItem = { category };
  if (brand !== '' && brand !== '0') item.brand = brand;
  const price = /^\s*$/.test(priceCell) ? Number.NaN : Number(priceCell);
  if (!Number.isFinite(price)) item.priceProblem = 'missingPrice';
  else if (price <= 0) item.priceProblem = 'nonPositivePrice';
  else if (price > MAX_PLAUSIBLE_PRICE) item.priceProblem = 'absurdPrice';
  else item.price = price;
  return item;
}

/** A real calendar date in YYYYMMDD form (dayFromDate alone would roll 20190632 over into July). */
function dayOfDate(cell: string): number | undefined {
  if (!/^\d{8}$/.test(cell)) return undefined;
  const day = dayFromDate(cell);
  return dateFromDay(day).replaceAll('-', '') === cell ? day : undefined;
}

/**
 * Accumulates the three files line by line. Item and user lines must all come before the first
 * event line, because events are joined with items as they arrive.
 */
export class TianchiDatasetBuilder {
  private readonly items = new Map<string, TianchiItem>();
  private readonly labelsByUser = new Map<string, ProfileLabels>();
  private readonly seenEventLines = new Set<string>();
  private readonly eventsByUser = new Map<string, BehaviourEvent[]>();
  private readonly cleaning = emptyCleaningReport();
  /** The sample has ten distinct dates; parsing each once keeps a full load fast. */
  private readonly dayByDate = new Map<string, number | undefined>();
  private eventsStarted = false;

  addItemLine(rawLine: string): void {
    this.refuseAfterEvents('addItemLine');
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') return;
    const fields = line.split('\t');
    if (fields.length !== 5 || fields[0] === '' || fields[2] === '') {
      countInto(this.cleaning.dropped, 'badItemRow');
      return;
    }
    const itemId = fields[0];
    if (this.items.has(itemId)) countInto(this.cleaning.dropped, 'duplicateItemRow');
    else this.items.set(itemId, itemFromFields(fields));
  }

  addUserLine(rawLine: string): void {
    this.refuseAfterEvents('addUserLine');
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') return;
    const fields = line.split('\t');
    if (fields.length !== 7 || fields[0] === '') {
      countInto(this.cleaning.dropped, 'badLabelRow');
      return;
    }
    const userId = fields[0];
    if (this.labelsByUser.has(userId)) {
      countInto(this.cleaning.dropped, 'duplicateLabelRow');
      return;
    }
    const { labels, invalid } = labelsFromTianchiUserRow(fields);
    if (invalid > 0) countInto(this.cleaning.repaired, 'invalidLabelValue', invalid);
    this.labelsByUser.set(userId, labels);
  }

  addEventLine(rawLine: string): void {
    this.eventsStarted = true;
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '') return;
    const { cleaning } = this;
    cleaning.rowsRead += 1;
    const fields = line.split('\t');
    const [userId = '', itemId = '', typeCell = '', dateCell = ''] = fields;
    const type = TIANCHI_EVENT_TYPES[typeCell];
    if (!this.dayByDate.has(dateCell)) this.dayByDate.set(dateCell, dayOfDate(dateCell));
    const day = this.dayByDate.get(dateCell);
    if (fields.length !== 4 || userId === '' || itemId === '' || type === undefined || day === undefined) {
      countInto(cleaning.dropped, 'malformed');
      return;
    }
    if (this.seenEventLines.has(line)) {
      countInto(cleaning.dropped, 'exactDuplicate');
      return;
    }
    this.seenEventLines.add(line);
    const item = this.items.get(itemId);
    if (item === undefined) {
      countInto(cleaning.dropped, 'unknownItem');
      return;
    }
    let event: BehaviourEvent;
    try {
      // The shared schema still has the last word (id lengths, types).
      event = parseEvent({ userId, day, type, itemId, category: item.category, brand: item.brand, price: item.price });
    } catch (err) {
      if (!(err instanceof ZodError)) throw err;
      countInto(cleaning.dropped, 'malformed');
      return;
    }
    if (item.priceProblem !== undefined) countInto(cleaning.repaired, item.priceProblem);
    const events = this.eventsByUser.get(userId);
    if (events) events.push(event);
    else this.eventsByUser.set(userId, [event]);
    cleaning.eventsKept += 1;
  }

  finish(): Dataset {
    return assembleDataset('tianchi', this.eventsByUser, this.labelsByUser, this.cleaning);
  }

  private refuseAfterEvents(method: string): void {
    if (this.eventsStarted) throw new Error(`TianchiDatasetBuilder.${method}: item and user lines must come before event lines`);
  }
}

/** The importer as a pure function of the files' lines (for tests without files). */
export function tianchiDatasetFromLines(lines: TianchiLines): Dataset {
  const builder = new TianchiDatasetBuilder();
  for (const line of lines.items) builder.addItemLine(line);
  for (const line of lines.users) builder.addUserLine(line);
  for (const line of lines.events) builder.addEventLine(line);
  return builder.finish();
}

/**
 * Loads the Tianchi sample from `dir`, streaming each file line by line.
 *
 * Cleaning report keys (see also scripts/import/events-file.ts, which assembles the dataset):
 * - Event rows (`rowsRead` = `eventsKept` + these), checked in this order: `malformed` (not 4
 *   fields, empty id, type not 1-4, date not a real YYYYMMDD), `exactDuplicate` (the same line
 *   as an earlier well-formed one), `unknownItem` (item not in the item file). Blank lines are not rows.
 * - Item file rows: `dropped.badItemRow` (not 5 fields, empty item or cate_id),
 *   `dropped.duplicateItemRow` (item id again; the first row wins).
 * - User file rows: `dropped.badLabelRow` (not 7 fields, empty user id), `dropped.duplicateLabelRow`,
 *   `dropped.labelRowWithoutEvents` (a user with no kept event).
 * - Per kept event whose item's price is unusable, the price is removed: `repaired.missingPrice`
 *   (empty or not a number), `repaired.nonPositivePrice`, `repaired.absurdPrice`
 *   (> MAX_PLAUSIBLE_PRICE).
 * - Per user row, `repaired.invalidLabelValue` for each label value outside its documented domain
 *   (the label is left absent; -1 and empty are the file's own "unknown" and are not counted).
 * - `repaired.userWithoutLabels`: users with events but no row in the user file (labels `{}`).
 */
export async function loadTianchi(dir: string): Promise<Dataset> {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`"dir" expected a directory path, got ${JSON.stringify(dir)}`);
  // Name the directory the user gave, not the first file inside it that could not be opened.
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new ProtocolError('NOT_FOUND', `no such directory: ${resolve(dir)}`);
  const builder = new TianchiDatasetBuilder();
  for await (const line of readLines(join(dir, TIANCHI_FILES.items))) builder.addItemLine(line);
  for await (const line of readLines(join(dir, TIANCHI_FILES.users))) builder.addUserLine(line);
  for await (const line of readLines(join(dir, TIANCHI_FILES.events))) builder.addEventLine(line);
  return builder.finish();
}
