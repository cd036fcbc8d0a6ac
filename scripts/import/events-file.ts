/**
 * Importer for a generic events file (JSONL or CSV in the schema of shared/features/events.ts),
 * with an optional profile-labels file, into a Dataset whose cleaning report counts every
 * dropped or repaired row by reason. Also holds the line reader and dataset assembly that the
 * Tianchi importer shares.
 */
import { open } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ZodError } from 'zod';
import { ProtocolError } from '../../shared/protocol/errors.ts';
import { MAX_PLAUSIBLE_PRICE, parseEvent, sortEvents } from '../../shared/features/events.ts';
import type { BehaviourEvent } from '../../shared/features/events.ts';
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

/** One row of a table: a record to validate, or `undefined` when the line itself cannot be read. */
type TableRow = Record<string, unknown> | undefined;

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
  for await (const line of readLines(path)) {
    if (line.trim() === '') continue;
    if (format === 'jsonl') {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        yield undefined;
        continue;
      }
      yield typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
      continue;
    }
    const cells = splitCsvLine(line);
    if (header === undefined) {
      header = checkHeader(path, argName, spec, cells);
      continue;
    }
    if (cells === undefined || cells.length !== header.length) {
      yield undefined;
      continue;
    }
    const row: Record<string, unknown> = {};
    header.forEach((column, k) => {
      const cell = cells[k];
      if (cell !== '') row[column] = spec.convertCell(column, cell);
    });
    yield row;
  }
}

/** Cells that look like numbers become numbers; others stay strings, so validation rejects them. */
function numberOrText(cell: string): unknown {
  return NUMBER_PATTERN.test(cell) ? Number(cell) : cell;
}

const EVENT_TABLE: TableSpec = {
  columns: ['userId', 'ts', 'day', 'type', 'itemId', 'category', 'brand', 'price'],
  required: ['userId', 'type', 'itemId', 'category'],
  requiredOneOf: ['ts', 'day'],
  convertCell: (column, cell) => (column === 'ts' || column === 'day' || column === 'price' ? numberOrText(cell) : cell),
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
function parseLabelRow(row: TableRow): { userId: string; labels: ProfileLabels } | undefined {
  if (row === undefined) return undefined;
  const { userId, ...rest } = row;
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID_LENGTH) return undefined;
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

async function loadLabelsFile(path: string, cleaning: CleaningReport): Promise<Map<string, ProfileLabels>> {
  const labelsByUser = new Map<string, ProfileLabels>();
  for await (const row of readTable(path, 'labelsPath', LABEL_TABLE)) {
    const parsed = parseLabelRow(row);
    if (parsed === undefined) countInto(cleaning.dropped, 'badLabelRow');
    else if (labelsByUser.has(parsed.userId)) countInto(cleaning.dropped, 'duplicateLabelRow');
    else labelsByUser.set(parsed.userId, parsed.labels);
  }
  return labelsByUser;
}

/** The duplicate key: every field of the parsed event, in a fixed order, before any repair. */
function eventKey(e: BehaviourEvent): string {
  return JSON.stringify([e.userId, e.day, e.ts ?? null, e.type, e.itemId, e.category, e.brand ?? null, e.price ?? null]);
}

/**
 * Loads a generic events file. Each row goes through `parseEvent`; rows it rejects are dropped as
 * `malformed`, repeats of an earlier parsed event as `exactDuplicate`; implausible prices are
 * removed and counted.
 *
 * Cleaning report keys:
 * - `rowsRead`, `eventsKept` and the event-row reasons `malformed` and `exactDuplicate` in
 *   `dropped` count rows of the events file: rowsRead = eventsKept + malformed + exactDuplicate.
 *   Blank lines (and a CSV header) are not rows.
 * - Rows of the labels file are counted apart, under `dropped.badLabelRow` (fails
 *   ProfileLabelsSchema or has no valid userId), `dropped.duplicateLabelRow` (same userId again;
 *   the first row wins) and `dropped.labelRowWithoutEvents` (a user with no kept event).
 * - `repaired.absurdPrice` (price > MAX_PLAUSIBLE_PRICE) and `repaired.nonPositivePrice`
 *   (price 0): the price is removed and the event kept. Negative prices fail the schema.
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
    let event: BehaviourEvent;
    try {
      event = parseEvent(row);
    } catch (err) {
      if (!(err instanceof ZodError)) throw err;
      countInto(cleaning.dropped, 'malformed');
      continue;
    }
    const key = eventKey(event);
    if (seen.has(key)) {
      countInto(cleaning.dropped, 'exactDuplicate');
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

  const labelsByUser = options.labelsPath === undefined ? undefined : await loadLabelsFile(options.labelsPath, cleaning);
  const name = options.name ?? basename(path, extname(path));
  return assembleDataset(name, eventsByUser, labelsByUser, cleaning);
}
