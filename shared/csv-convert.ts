// Converts a CSV data file (plain or gzip) to the binary .dpt format in one streaming pass with
// constant memory: records are checked with the same rules as shared/dataset.ts (so a bad cell
// names file, line and column) and appended to the writer in batches. Label cells of any value
// pass through to the writer, which finds the classes (issue #12; a 0/1 file keeps its bytes).

import { type BinaryDatasetSummary, BinaryDatasetWriter } from './binary-dataset.js';
import { type CsvColumns, parseRecordCells, resolveColumns } from './csv-rules.js';
import { type StreamProgress, streamCsvRecords } from './csv-stream.js';
import { DatasetError } from './errors.js';

export interface ConvertProgress extends StreamProgress {
  readonly rows: number;
}

export interface ConvertOptions {
  /** Header name or 0-based index (negative from the end); default: the last column. */
  readonly labelColumn?: string | undefined;
  /** Most distinct labels (classes) accepted; default DEFAULT_MAX_CLASSES (shared/classes.ts), at most 65,535. */
  readonly maxClasses?: number | undefined;
  readonly onProgress?: ((progress: ConvertProgress) => void) | undefined;
}

/** Rows per append: about 1 MiB of features, at least 1 row. */
function batchRows(D: number): number {
  return Math.max(1, Math.floor(262_144 / D));
}

/** Converts `input` (CSV) to `output` (.dpt); the output appears only if the whole input is valid. */
export async function convertCsvToBinary(input: string, output: string, options: ConvertOptions = {}): Promise<BinaryDatasetSummary> {
  const converter = new RecordsToBinary(input, output, options.labelColumn, options.maxClasses);
  try {
    await streamCsvRecords(
      input,
      (fields, line) => converter.record(fields, line),
      (progress) => options.onProgress?.({ ...progress, rows: converter.rows }),
    );
    return converter.finish();
  } catch (error) {
    converter.abort();
    throw error;
  }
}

/** The header record opens the writer; data records fill a batch that is appended when full. */
class RecordsToBinary {
  private readonly input: string;
  private readonly output: string;
  private readonly labelColumn: string | undefined;
  private readonly maxClasses: number | undefined;
  private columns: CsvColumns | null = null;
  private writer: BinaryDatasetWriter | null = null;
  private x = new Float32Array(0);
  /** The batch's label cells and their lines (for the writer's messages). */
  private cells: string[] = [];
  private lines = new Float64Array(0); // line numbers can pass 2^31 in a file of up to 2^32 − 1 rows
  private filled = 0;

  constructor(input: string, output: string, labelColumn: string | undefined, maxClasses: number | undefined) {
    this.input = input;
    this.output = output;
    this.labelColumn = labelColumn;
    this.maxClasses = maxClasses;
  }

  get rows(): number {
    return (this.writer?.rowsWritten ?? 0) + this.filled;
  }

  record(fields: string[], line: number): void {
    if (this.columns === null || this.writer === null) {
      const columns = resolveColumns(this.input, line, fields, { labelColumn: this.labelColumn });
      // The label name is null only for labelColumn null, which this converter never passes.
      this.writer = new BinaryDatasetWriter(
        this.output,
        { featureNames: columns.featureNames, labelName: columns.labelName! },
        { maxClasses: this.maxClasses, labelSource: { path: this.input, column: columns.labelIndex + 1 } },
      );
      const D = columns.columns.length;
      this.x = new Float32Array(batchRows(D) * D);
      this.cells = new Array<string>(batchRows(D)).fill('');
      this.lines = new Float64Array(batchRows(D));
      this.columns = columns;
      return;
    }
    const D = this.columns.columns.length;
    // A label column exists (labelColumn is never null here), so the cell is a string.
    this.cells[this.filled] = parseRecordCells(this.input, line, fields, this.columns, this.x, this.filled * D)!;
    this.lines[this.filled] = line;
    if (++this.filled === this.cells.length) this.flush(this.writer);
  }

  finish(): BinaryDatasetSummary {
    if (this.writer === null) throw new DatasetError(this.input, undefined, undefined, 'the file is empty (expected a header row and data rows)');
    this.flush(this.writer);
    if (this.writer.rowsWritten === 0) throw new DatasetError(this.input, 2, undefined, 'the file has a header but no data rows');
    return this.writer.finish();
  }

  abort(): void {
    this.writer?.abort();
  }

  private flush(writer: BinaryDatasetWriter): void {
    if (this.filled > 0) writer.appendCells(this.x, this.cells, this.filled, this.lines);
    this.filled = 0;
  }
}
