// A strict reader of CSV text (RFC 4180: a header row, commas, optional double quotes with ""
// escapes, CRLF or LF, a UTF-8 BOM, blank lines ignored). It yields each record with the
// 1-based line it starts on, so every later error can name file and line.

import { DatasetError } from './errors.js';

/** Called once per record; `fields` is reused by the next call, copy what you keep. */
export type RecordHandler = (fields: string[], line: number) => void;

/** Parses `text` record by record; throws DatasetError on a quote left open. */
export function parseCsv(file: string, text: string, onRecord: RecordHandler): void {
  let position = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const fields: string[] = [];
  const length = text.length;
  // Index of the next '"' at or after `position` (-1: none left); refreshed lazily so a file
  // without quotes is scanned once, not once per line.
  let nextQuote = text.indexOf('"', position);
  while (position < length) {
    if (nextQuote !== -1 && nextQuote < position) nextQuote = text.indexOf('"', position);
    let lineEnd = text.indexOf('\n', position);
    if (lineEnd === -1) lineEnd = length;
    const contentEnd = lineEnd > position && text.charCodeAt(lineEnd - 1) === 13 ? lineEnd - 1 : lineEnd;
    const startLine = line;
    if (contentEnd === position || isBlank(text, position, contentEnd)) {
      position = lineEnd + 1;
      line++;
      continue;
    }
    fields.length = 0;
    if (nextQuote === -1 || nextQuote >= contentEnd) {
      // Fast path: no quotes on this line.
      let fieldStart = position;
      for (let comma = text.indexOf(',', position); comma !== -1 && comma < contentEnd; comma = text.indexOf(',', comma + 1)) {
        fields.push(text.slice(fieldStart, comma));
        fieldStart = comma + 1;
      }
      fields.push(text.slice(fieldStart, contentEnd));
      position = lineEnd + 1;
      line++;
    } else {
      const end = readQuotedRecord(file, text, position, startLine, fields);
      line += countNewlines(text, position, end.recordEnd) + 1;
      position = end.recordEnd + 1;
    }
    onRecord(fields, startLine);
  }
}

function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

function countNewlines(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

/** Reads one record that contains quotes (possibly spanning lines); returns the index of its '\n' (or length). */
function readQuotedRecord(file: string, text: string, start: number, line: number, fields: string[]): { recordEnd: number } {
  let i = start;
  let field = '';
  let column = 1;
  const length = text.length;
  for (;;) {
    if (text.charCodeAt(i) === 34) {
      // Quoted field: runs to the closing quote; "" is a literal quote.
      i++;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote === -1) throw new DatasetError(file, line, column, 'a quoted field is never closed');
        field += text.slice(i, quote);
        if (text.charCodeAt(quote + 1) === 34) {
          field += '"';
          i = quote + 2;
        } else {
          i = quote + 1;
          break;
        }
      }
      // After the closing quote only a separator or the end of the record may follow.
      let after = i;
      while (after < length && text.charCodeAt(after) === 32) after++;
      const c = text.charCodeAt(after);
      if (after < length && c !== 44 && c !== 10 && c !== 13) {
        throw new DatasetError(file, line, column, 'unexpected text after a closing quote');
      }
      i = after;
    } else {
      let j = i;
      while (j < length) {
        const c = text.charCodeAt(j);
        if (c === 44 || c === 10 || (c === 13 && text.charCodeAt(j + 1) === 10)) break;
        if (c === 34) throw new DatasetError(file, line, column, 'a quote inside an unquoted field');
        j++;
      }
      field = text.slice(i, j);
      i = j;
    }
    fields.push(field);
    field = '';
    column++;
    const c = text.charCodeAt(i);
    if (c === 44) {
      i++;
      continue;
    }
    if (c === 13) i++;
    return { recordEnd: Math.min(i, length) };
  }
}
