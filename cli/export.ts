// `dpt export --format onnx MODEL.json OUT.onnx` (issue #14 item 9): a model file of either kind
// written as an ONNX model that any ONNX runtime serves. Every input is checked before anything
// is written; the output replaces OUT atomically (shared/atomic-file.ts). Models over sparse inputs
// (issue #13: hashed CSV, LIBSVM) are refused, exit 2.

import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { ConfigError } from '../shared/errors.js';
import { isSparseModel, readModelFile } from '../shared/model-file.js';
import { requireRegularFile } from '../shared/regular-file.js';
import { type OnnxPrecision, onnxModelOf } from './onnx-model.js';
import { encodeOnnxModel } from './onnx-proto.js';
import { checkOutputPaths } from './output-paths.js';

/** The formats `--format` accepts. */
export const EXPORT_FORMATS = ['onnx'] as const;
export const EXPORT_PRECISIONS: readonly OnnxPrecision[] = ['float32', 'float64'];

/**
 * Writes the ONNX model of the model file `modelPath` to `outPath`. Throws ConfigError (exit 2)
 * for an unknown format or precision, or an output that cannot be written or is the model file;
 * ModelFileError (exit 2) for a missing or malformed model file; WriteError (exit 1) when the
 * write fails (OUT is then unchanged).
 */
export function exportCommand(options: { format: string; precision: string; modelPath: string; outPath: string; producerVersion: string }): void {
  const { format, precision, modelPath, outPath } = options;
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new ConfigError(`--format ${format} is not an export format; known: ${EXPORT_FORMATS.join(', ')}`);
  if (!isPrecision(precision)) throw new ConfigError(`--precision ${precision} is not one of ${EXPORT_PRECISIONS.join(', ')}`);
  // A FIFO or device as the model would block the read; a missing file is readModelFile's DPT_MODEL_FILE.
  if (existsSync(modelPath)) requireRegularFile(modelPath, '<model>');
  checkOutputPaths([{ flag: '<out>', path: outPath }], [{ flag: '<model>', path: modelPath }]);
  const model = readModelFile(modelPath);
  // ONNX has no murmur3 operator, and its inputs are dense tensors: a 2^24-wide input would be a
  // 64 MB tensor per row. Refused rather than exported half-way (issue #13, README).
  if (isSparseModel(model))
    throw new ConfigError(
      `${modelPath}: a model over sparse inputs ('input': '${model.input}') cannot be exported to ONNX (${model.input === 'hashed-csv' ? 'ONNX has no murmur3 feature hashing' : 'ONNX inputs are dense tensors'}); use dpt predict or the library's predict`,
    );
  const bytes = encodeOnnxModel(onnxModelOf(model, precision, options.producerVersion));
  writeFileAtomic(outPath, bytes);
  const classes = model.kind === 'logistic-regression' ? 2 : model.classes.length;
  process.stderr.write(
    `${model.kind} model (${model.features.length} features, ${classes} classes) written to ${outPath} as ONNX (${bytes.length} bytes, ${precision})\n`,
  );
}

function isPrecision(value: string): value is OnnxPrecision {
  return (EXPORT_PRECISIONS as readonly string[]).includes(value);
}
