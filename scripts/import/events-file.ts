/**
 * Importer for a generic events file (JSONL or CSV in the schema of shared/features/events.ts),
 * with an optional profile-labels file, into a Dataset whose cleaning report counts every
 * dropped or repaired row by reason, with the first line numbers of each. Rows are read as
 * people write them (ISO dates, numeric ids) and normalised before the shared schema checks
 * them. Also holds the line reader and dataset assembly that the Tianchi importer shares.
 */
import { open } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ZodError } from 'zod';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { EVENT_TYPES, MAX_PLAUSIBLE_PRICE, MS_PER_DAY, parseEvent, sortEvents } from '../../shared/features/events.ts';
import type { BehaviourEvent, BehaviourEventInput, EventType } from '../../shared/features/events.ts';
import { ProfileLabelsSchema } from '../../shared/features/labels.ts';
import type { ProfileLabels } from '../../shared/features/labels.ts';
import { countInto, emptyCleaningReport } from '../../shared/features/dataset.ts';
import type { CleaningReport, Dataset, UserRecord } from '../../shared/features/dataset.ts';

export interface LoadEventsFileOptions {
  /** JSONL of `{userId, age?, gender?, career?, stage?}` (canonical encoding) or CSV with those columns, stage as `0|5|3`. */
  labelsPath?: string;
  /** Dataset name; defaults to the events file's name without its extension. */
  name?: string;
}

type TableFormat = 'jsonl' | 'csv';

const MAX_USER_ID_LENGTH = 128;
const NUMBER_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** 10000-01-01T00:00Z: a day index or ts at or past it is not a date anyone meant (20190615 read as days, say). */
const END_OF_TIME_MS = Date.UTC(10000, 0, 1);
/** How many line numbers each reason keeps in `droppedLines`. */
export const DROPPED_LINES_KEPT = 5;

/** Streams a text file line by line (never the whole file in one string); strips a UTF-8 BOM. */
export async function* readLines(path: string): AsyncGenerator<string> {
  // Opening first makes a missing file reject here, with its path, rather than inside readline.
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ProtocolError('NOT_FOUND', `no such file: ${resolve(path)}`);
    throw err;
  }
  const stream = file.createReadStream({ encoding: 'utf8' });
  // crlfDelay: Infinity reads a \r\n split across two chunks as one line break.
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let first = true;
  try {
    for await (const line of lines) {
      yield first && line.startsWith('\uFEFF') ? line.slice(1) : line;
      first = false;
    }
  } finally {
    // Also runs when the reader stops early (a bad CSV header): release the file either way.
    lines.close();
    stream.destroy();
  }
}

/**
 * Groups kept events into users sorted by userId (code-unit order), each with sorted events and
 * its labels (`{}` when none); counts label rows without events and users without labels.
 */
export function assembleDataset(
  name: string,
  eventsByUser: ReadonlyMap<string, BehaviourEvent[]>,
  labelsByUser: ReadonlyMap<string, ProfileLabels> | undefined,
  cleaning: CleaningReport,
): Dataset {
  const userIds = [...eventsByUser.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let firstDay = Infinity;
  let lastDay = -Infinity;
  const users: UserRecord[] = userIds.map((userId) => {
    const events = sortEvents(eventsByUser.get(userId) ?? []);
    for (const e of events) {
      if (e.day < firstDay) firstDay = e.day;
      if (e.day > lastDay) lastDay = e.day;
    }
    const labels = labelsByUser?.get(userId);
    if (labelsByUser && labels === undefined) countInto(cleaning.repaired, 'userWithoutLabels');
    return { userId, events, labels: labels ?? {} };
  });
  if (labelsByUser) {
    for (const userId of labelsByUser.keys()) {
      if (!eventsByUser.has(userId)) countInto(cleaning.dropped, 'labelRowWithoutEvents');
    }
  }
  const empty = users.length === 0;
  return { name, startDay: empty ? 0 : firstDay, days: empty ? 0 : lastDay - firstDay + 1, users, cleaning };
}

/** Splits one CSV line (RFC 4180 quoting, no line breaks inside a cell); undefined if badly quoted. */
export function splitCsvLine(line: string): string[] | undefined {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let cell = '';
      i += 1;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote < 0) return undefined;
        cell += line.slice(i, quote);
        if (line[quote + 1] === '"') {
          cell += '"';
          i = quote + 2;
        } else {
          i = quote + 1;
          break;
        }
      }
      cells.push(cell);
      if (i === line.length) return cells;
      if (line[i] !== ',') return undefined;
      i += 1;
    } else {
      const comma = line.indexOf(',', i);
      const cell = line.slice(i, comma < 0 ? line.length : comma);
      if (cell.includes('"')) return undefined;
      cells.push(cell);
      if (comma < 0) return cells;
      i = comma + 1;
    }
  }
}

function formatOf(path: string, argName: string): TableFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.csv') return 'csv';
  throw new RangeError(`"${argName}" expected a .jsonl, .ndjson or .csv file, got ${JSON.stringify(path)}`);
}

/** One row of a table and its 1-based line number; `fields` is undefined when the line itself cannot be read. */
interface TableRow {
  line: number;
  fields: Record<string, unknown> | undefined;
  /** Why the line could not be read: not a JSON object, or a CSV line with bad quoting or the wrong number of cells. */
  unreadable?: 'badJson' | 'badCsvRow';
}

interface TableSpec {
  /** The columns a CSV header may name. */
  columns: readonly string[];
  /** Columns a CSV header must name. */
  required: readonly string[];
  /** At least one of these must be named, when given. */
  requiredOneOf?: readonly string[];
  /** Turns a non-empty CSV cell into the value validation sees. */
  convertCell: (column: string, cell: string) => unknown;
}

function checkHeader(path: string, argName: string, spec: TableSpec, header: readonly string[] | undefined): readonly string[] {
  const where = `"${argName}" ${path}`;
  if (header === undefined) throw new RangeError(`${where}: header row is not valid CSV`);
  const unknown = header.filter((c) => !spec.columns.includes(c));
  if (unknown.length > 0) throw new RangeError(`${where}: unknown column(s) ${unknown.join(', ')}; expected some of ${spec.columns.join(', ')}`);
  if (new Set(header).size !== header.length) throw new RangeError(`${where}: a column is named twice in the header`);
  const missing = spec.required.filter((c) => !header.includes(c));
  if (missing.length > 0) throw new RangeError(`${where}: missing column(s) ${missing.join(', ')}`);
  if (spec.requiredOneOf && !spec.requiredOneOf.some((c) => header.includes(c))) {
    throw new RangeError(`${where}: needs a column ${spec.requiredOneOf.join(' or ')}`);
  }
  return header;
}

/**
 * Reads a JSONL or CSV table row by row. CSV: the first non-blank line is the header; a header
 * naming unknown columns or lacking required ones is a file-level RangeError; empty cells are
 * absent.
 */
async function* readTable(path: string, argName: string, spec: TableSpec): AsyncGenerator<TableRow> {
  const format = formatOf(path, argName);
  let header: readonly string[] | undefined;
  let lineNumber = 0;
  for await (const line of readLines(path)) {
    lineNumber += 1;
    if (line.trim() === '') continue;
    if (format === 'jsonl') {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        value = undefined;
      }
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) yield { line: lineNumber, fields: value as Record<string, unknown> };
      else yield { line: lineNumber, fields: undefined, unreadable: 'badJson' };
      continue;
    }
    const cells = splitCsvLine(line);
    if (header === undefined) {
      header = checkHeader(path, argName, spec, cells);
      continue;
    }
    if (cells === undefined || cells.length !== header.length) {
      yield { line: lineNumber, fields: undefined, unreadable: 'badCsvRow' };
      continue;
    }
    const fields: Record<string, unknown> = {};
    header.forEach((column, k) => {
      const cell = cells[k];
      if (cell !== '') fields[column] = spec.convertCell(column, cell);
    });
    yield { line: lineNumber, fields };
  }
}

/** Cells that look like numbers become numbers; others stay strings, so validation rejects them. */
function numberOrText(cell: string): unknown {
  return NUMBER_PATTERN.test(cell) ? Number(cell) : cell;
}

const EVENT_FIELDS = ['userId', 'ts', 'day', 'type', 'itemId', 'category', 'brand', 'price'] as const;

/** CSV cells stay text: `normaliseEventRow` reads numbers, dates and ids from text as from JSON. */
const EVENT_TABLE: TableSpec = {
  columns: EVENT_FIELDS,
  required: ['userId', 'type', 'itemId', 'category'],
  requiredOneOf: ['ts', 'day'],
  convertCell: (_column, cell) => cell,
};

const LABEL_TABLE: TableSpec = {
  columns: ['userId', 'age', 'gender', 'career', 'stage'],
  required: ['userId'],
  convertCell: (column, cell) => {
    if (column === 'stage') return cell.split('|').map(numberOrText);
    return column === 'userId' ? cell : numberOrText(cell);
  },
};

/** Validates one labels row; returns the userId and canonical labels (stage sorted, deduplicated, [] → absent). */
function parseLabelRow(fields: Record<string, unknown> | undefined): { userId: string; labels: ProfileLabels } | undefined {
  if (fields === undefined) return undefined;
  const { userId: written, ...rest } = fields;
  const userId = idOf(written);
  if (userId === undefined) return undefined;
  const parsed = ProfileLabelsSchema.safeParse(rest);
  if (!parsed.success) return undefined;
  const labels: ProfileLabels = { ...parsed.data };
  if (labels.stage !== undefined) {
    const stage = [...new Set(labels.stage)].sort((a, b) => a - b);
    if (stage.length > 0) labels.stage = stage;
    else delete labels.stage;
  }
  return { userId, labels };
}

interface LabelsFile {
  labelsByUser: Map<string, ProfileLabels>;
  /** The line of each user's labels row, for `labelRowWithoutEvents`. */
  lineByUser: Map<string, number>;
}

async function loadLabelsFile(path: string, cleaning: CleaningReport): Promise<LabelsFile> {
  const labelsByUser = new Map<string, ProfileLabels>();
  const lineByUser = new Map<string, number>();
  for await (const row of readTable(path, 'labelsPath', LABEL_TABLE)) {
    const parsed = parseLabelRow(row.fields);
    if (parsed === undefined) dropRow(cleaning, 'badLabelRow', row.line);
    else if (labelsByUser.has(parsed.userId)) dropRow(cleaning, 'duplicateLabelRow', row.line);
    else {
      labelsByUser.set(parsed.userId, parsed.labels);
      lineByUser.set(parsed.userId, row.line);
    }
  }
  return { labelsByUser, lineByUser };
}

/**
 * Why a row of an events or labels file was dropped, as the cleaning report names it. Event-row
 * reasons are checked in this order, and a row counts under the first that applies.
 */
export const DROP_REASONS = {
  badJson: 'the line is not a JSON object',
  badCsvRow: 'bad quoting, or not as many cells as the header',
  unknownField: `a field other than ${EVENT_FIELDS.join(', ')}`,
  missingUserId: 'no userId',
  badUserId: 'userId is not a string of 1-128 characters or an integer',
  missingType: 'no type',
  unknownType: `type is not one of ${EVENT_TYPES.join(', ')}`,
  missingItemId: 'no itemId',
  badItemId: 'itemId is not a string of 1-128 characters or an integer',
  missingCategory: 'no category',
  badCategory: 'category is not a string of 1-128 characters or an integer',
  badBrand: 'brand is not a string of 1-128 characters or an integer',
  missingTime: 'neither day nor ts',
  badDay: 'day is not a day index (whole days since 1970-01-01), an ISO date (2019-06-15) or an ISO timestamp (2019-06-15T10:20:00Z)',
  badTs: 'ts is not milliseconds since 1970-01-01T00:00Z or an ISO timestamp (2019-06-15T10:20:00Z)',
  timestampWithoutZone: 'an ISO timestamp without Z or a +hh:mm offset, which could be any time zone',
  timeConflict: 'day and ts name different UTC days or times',
  badPrice: 'price is not a number >= 0',
  malformed: 'fails the event schema of shared/features/events.ts',
  exactDuplicate: 'the same event as an earlier row',
  badLabelRow: 'a labels row without a valid userId or with a value outside its range',
  duplicateLabelRow: 'a labels row for a userId an earlier labels row gave',
  labelRowWithoutEvents: 'a labels row whose user has no kept event',
} as const;

type DropReason = keyof typeof DROP_REASONS;

const LABEL_FILE_REASONS: ReadonlySet<string> = new Set<DropReason>(['badLabelRow', 'duplicateLabelRow', 'labelRowWithoutEvents']);

/** Keeps a dropped row's line number under `reason`, among the first DROPPED_LINES_KEPT. */
function keepDroppedLine(cleaning: CleaningReport, reason: DropReason, line: number): void {
  const kept = ((cleaning.droppedLines ??= {})[reason] ??= []);
  if (kept.length < DROPPED_LINES_KEPT) kept.push(line);
}

function dropRow(cleaning: CleaningReport, reason: DropReason, line: number): void {
  countInto(cleaning.dropped, reason);
  keepDroppedLine(cleaning, reason, line);
}

/**
 * One line per reason in `cleaning.dropped`: count, first line numbers (marking those of the
 * labels file) and what the reason means, for warnings and errors.
 */
export function describeDroppedRows(cleaning: CleaningReport): string[] {
  return Object.entries(cleaning.dropped).map(([reason, count]) => {
    const lines = cleaning.droppedLines?.[reason] ?? [];
    const more = count > lines.length ? ', ...' : '';
    const file = LABEL_FILE_REASONS.has(reason) ? ' of the labels file' : '';
    const where = lines.length === 0 ? '' : ` (line${count > 1 ? 's' : ''} ${lines.join(', ')}${more}${file})`;
    const meaning = (DROP_REASONS as Record<string, string>)[reason];
    return `${reason}: ${count}${where}${meaning === undefined ? '' : `: ${meaning}`}`;
  });
}

/** An id as the schema wants it: a string as written, or an integer (JSON numbers, spreadsheet exports) in decimal. */
function idOf(value: unknown): string | undefined {
  const text = typeof value === 'string' ? value : Number.isSafeInteger(value) ? String(value) : undefined;
  return text !== undefined && text.length > 0 && text.length <= MAX_USER_ID_LENGTH ? text : undefined;
}

/** A number, or a string that is one (CSV cells, quoted JSON numbers). */
function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  return NUMBER_PATTERN.test(text) ? Number(text) : undefined;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|z|[+-]\d{2}:?\d{2})?$/;

/** ms since the epoch of a real calendar date and time (Date.UTC alone would roll 2019-06-31 into July), or undefined. */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number | undefined {
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const d = new Date(t);
  const real = d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day && d.getUTCHours() === hour && d.getUTCMinutes() === minute && d.getUTCSeconds() === second;
  return real ? t : undefined;
}

/** A time field's value: a UTC day index, an instant in ms, or why it is neither. */
type TimeValue = { day: number } | { ts: number } | { problem: 'badDay' | 'badTs' | 'timestampWithoutZone' };

/**
 * Reads `day` or `ts`: a number (day index or ms), or a string holding one, an ISO date (`day`
 * only: its UTC day) or an ISO timestamp with Z or an offset (an instant, its day the UTC day).
 */
function timeOf(value: unknown, field: 'day' | 'ts'): TimeValue {
  const bad = field === 'day' ? 'badDay' : 'badTs';
  const n = numberOf(value);
  if (n !== undefined) {
    const limit = field === 'day' ? END_OF_TIME_MS / MS_PER_DAY : END_OF_TIME_MS;
    if (!Number.isInteger(n) || n < 0 || n >= limit) return { problem: bad };
    return field === 'day' ? { day: n } : { ts: n };
  }
  if (typeof value !== 'string') return { problem: bad };
  const text = value.trim();
  const date = ISO_DATE.exec(text);
  if (date) {
    const t = field === 'day' ? utcMs(Number(date[1]), Number(date[2]), Number(date[3])) : undefined;
    return t === undefined || t < 0 ? { problem: bad } : { day: t / MS_PER_DAY };
  }
  const stamp = ISO_TIMESTAMP.exec(text);
  if (!stamp) return { problem: bad };
  const [, y, mo, d, h, mi, sec = '0', fraction = '', zone] = stamp;
  const local = utcMs(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(sec), Number(fraction.slice(0, 3).padEnd(3, '0')));
  if (local === undefined) return { problem: bad };
  if (zone === undefined) return { problem: 'timestampWithoutZone' };
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2));
    if (hours > 23 || minutes > 59) return { problem: bad };
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  const ts = local - offsetMinutes * 60_000;
  return ts >= 0 && ts < END_OF_TIME_MS ? { ts } : { problem: bad };
}

const TYPE_SPELLINGS: Readonly<Record<string, EventType>> = { favorite: 'favourite' };

/**
 * Turns one row as written into the schema's input form, or names the first reason it cannot be
 * (DROP_REASONS order). `null` is an absent field.
 */
function normaliseEventRow(row: TableRow): BehaviourEventInput | DropReason {
  if (row.fields === undefined) return row.unreadable ?? 'badJson';
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row.fields)) {
    if (!(EVENT_FIELDS as readonly string[]).includes(key)) return 'unknownField';
    if (value !== null) fields[key] = value;
  }
  if (fields.userId === undefined) return 'missingUserId';
  const userId = idOf(fields.userId);
  if (userId === undefined) return 'badUserId';
  if (fields.type === undefined) return 'missingType';
  const typeText = typeof fields.type === 'string' ? fields.type.trim().toLowerCase() : '';
  const type = TYPE_SPELLINGS[typeText] ?? EVENT_TYPES.find((t) => t === typeText);
  if (type === undefined) return 'unknownType';
  if (fields.itemId === undefined) return 'missingItemId';
  const itemId = idOf(fields.itemId);
  if (itemId === undefined) return 'badItemId';
  if (fields.category === undefined) return 'missingCategory';
  const category = idOf(fields.category);
  if (category === undefined) return 'badCategory';
  const brand = fields.brand === undefined ? undefined : idOf(fields.brand);
  if (fields.brand !== undefined && brand === undefined) return 'badBrand';

  if (fields.day === undefined && fields.ts === undefined) return 'missingTime';
  const fromDay = fields.day === undefined ? undefined : timeOf(fields.day, 'day');
  const fromTs = fields.ts === undefined ? undefined : timeOf(fields.ts, 'ts');
  if (fromDay && 'problem' in fromDay) return fromDay.problem;
  if (fromTs && 'problem' in fromTs) return fromTs.problem;
  // A timestamp written in `day` is an instant, as if written in `ts`.
  const instants = [fromDay, fromTs].flatMap((t) => (t && 'ts' in t ? [t.ts] : []));
  const days = [fromDay, fromTs].flatMap((t) => (t === undefined ? [] : ['day' in t ? t.day : Math.floor(t.ts / MS_PER_DAY)]));
  if (new Set(instants).size > 1 || new Set(days).size > 1) return 'timeConflict';

  const price = fields.price === undefined ? undefined : numberOf(fields.price);
  if (fields.price !== undefined && (price === undefined || !Number.isFinite(price) || price < 0)) return 'badPrice';

  const input: BehaviourEventInput = { userId, type, itemId, category, day: days[0] };
  if (instants[0] !== undefined) input.ts = instants[0];
  if (brand !== undefined) input.brand = brand;
  if (price !== undefined) input.price = price;
  return input;
}

/** The duplicate key: every field of the parsed event, in a fixed order, before any repair. */
function eventKey(e: BehaviourEvent): string {
  return JSON.stringify([e.userId, e.day, e.ts ?? null, e.type, e.itemId, e.category, e.brand ?? null, e.price ?? null]);
}

/**
 * Loads a generic events file. Each row is normalised (numeric ids to strings, ISO dates and
 * timestamps to `day` and `ts`) and then goes through `parseEvent`; rows that cannot be are
 * dropped under the first DROP_REASONS reason that applies, repeats of an earlier event as
 * `exactDuplicate`; implausible prices are removed and counted. A file with rows none of which
 * is kept is a RangeError listing the reasons and their lines.
 *
 * Cleaning report keys:
 * - `rowsRead`, `eventsKept` and the event-row reasons in `dropped` count rows of the events
 *   file: rowsRead = eventsKept + the event-row drops. Blank lines (and a CSV header) are not
 *   rows; line numbers count every line of the file from 1.
 * - Rows of the labels file are counted apart, under `dropped.badLabelRow` (fails
 *   ProfileLabelsSchema or has no valid userId; an integer userId is read as in the events file), `dropped.duplicateLabelRow` (same userId again;
 *   the first row wins) and `dropped.labelRowWithoutEvents` (a user with no kept event).
 * - `droppedLines`: the first DROPPED_LINES_KEPT line numbers per dropped reason, in the file the
 *   rows come from (the labels file for the three label reasons).
 * - `repaired.absurdPrice` (price > MAX_PLAUSIBLE_PRICE) and `repaired.nonPositivePrice`
 *   (price 0): the price is removed and the event kept. Negative prices are `badPrice`.
 * - `repaired.userWithoutLabels`: users with events but no labels row, when a labels file is given.
 */
export async function loadEventsFile(path: string, options: LoadEventsFileOptions = {}): Promise<Dataset> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError(`"path" expected a file path, got ${JSON.stringify(path)}`);
  formatOf(path, 'path');
  if (options.labelsPath !== undefined) formatOf(options.labelsPath, 'labelsPath');

  const cleaning = emptyCleaningReport();
  const seen = new Set<string>();
  const eventsByUser = new Map<string, BehaviourEvent[]>();
  for await (const row of readTable(path, 'path', EVENT_TABLE)) {
    cleaning.rowsRead += 1;
    const input = normaliseEventRow(row);
    if (typeof input === 'string') {
      dropRow(cleaning, input, row.line);
      continue;
    }
    let event: BehaviourEvent;
    try {
      // normaliseEventRow checks what the schema checks today; the schema still has the last word.
      event = parseEvent(input);
    } catch (err) {
      if (!(err instanceof ZodError)) throw err;
      dropRow(cleaning, 'malformed', row.line);
      continue;
    }
    const key = eventKey(event);
    if (seen.has(key)) {
      dropRow(cleaning, 'exactDuplicate', row.line);
      continue;
    }
    seen.add(key);
    if (event.price !== undefined && event.price > MAX_PLAUSIBLE_PRICE) {
      delete event.price;
      countInto(cleaning.repaired, 'absurdPrice');
    } else if (event.price === 0) {
      delete event.price;
      countInto(cleaning.repaired, 'nonPositivePrice');
    }
    const events = eventsByUser.get(event.userId);
    if (events) events.push(event);
    else eventsByUser.set(event.userId, [event]);
    cleaning.eventsKept += 1;
  }

  if (cleaning.rowsRead > 0 && cleaning.eventsKept === 0) {
    const reasons = describeDroppedRows(cleaning).map((r) => `\n  ${r}`);
    const all = cleaning.rowsRead === 1 ? 'its only row was' : `all ${cleaning.rowsRead} rows were`;
    throw new RangeError(`"path" ${resolve(path)}: ${all} dropped, none kept:${reasons.join('')}`);
  }

  const labels = options.labelsPath === undefined ? undefined : await loadLabelsFile(options.labelsPath, cleaning);
  const name = options.name ?? basename(path, extname(path));
  const dataset = assembleDataset(name, eventsByUser, labels?.labelsByUser, cleaning);
  // assembleDataset counted these rows (as for Tianchi); their lines are known only here.
  for (const [userId, line] of labels?.lineByUser ?? []) {
    if (!eventsByUser.has(userId)) keepDroppedLine(cleaning, 'labelRowWithoutEvents', line);
  }
  return dataset;
}
