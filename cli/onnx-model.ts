// The ONNX graph of a dpt model file (issue #14 item 9): standardization folded into the weights,
// so the graph takes raw feature values; outputs named as skl2onnx names a classifier's without
// ZipMap (`label`, `probabilities`). Only standard ai.onnx operators of opset 13 (Gemm, Softmax,
// ArgMax, Gather), which every ONNX runtime implements, including browser ones.

import type { ModelFile } from '../shared/model-file.js';
import type { OnnxModel, OnnxNode, OnnxTensor } from './onnx-proto.js';

/** IR version 7 and opset 13 (ONNX 1.8, 2020): the oldest pair with every operator and attribute used here. */
export const ONNX_IR_VERSION = 7;
export const ONNX_OPSET = 13;

/** How weights, input and probabilities are stored: float32 (the ONNX default) or float64. */
export type OnnxPrecision = 'float32' | 'float64';

/** The linear part of a model with its standardization folded in: scores z = W'·x + b' on raw x. */
export interface FoldedModel {
  /** Score rows: 1 for logistic (z), K for softmax (z_k). */
  readonly rows: number;
  /** Features. */
  readonly D: number;
  /** rows × D weights, row-major, for raw (unstandardized) inputs. */
  readonly w: Float64Array;
  /** rows biases. */
  readonly b: Float64Array;
}

/**
 * Folds x_std_j = (x_j − mean_j) / std_j into the weights, in float64:
 *   w'_kj = w_kj / std_j,   b'_k = b_k − Σ_j w_kj·mean_j / std_j   (j ascending),
 * so that w'_k·x + b'_k = w_k·x_std + b_k exactly in real arithmetic. Without standardization the
 * weights are copied unchanged.
 */
export function foldStandardization(model: ModelFile): FoldedModel {
  const D = model.features.length;
  const weightRows = model.kind === 'logistic-regression' ? [model.weights] : model.weights;
  const biases = model.kind === 'logistic-regression' ? [model.bias] : model.bias;
  const rows = weightRows.length;
  const w = new Float64Array(rows * D);
  const b = new Float64Array(rows);
  const standardization = model.standardization;
  for (let k = 0; k < rows; k++) {
    const row = weightRows[k]!;
    let bias = biases[k]!;
    for (let j = 0; j < D; j++) {
      if (standardization === null) w[k * D + j] = row[j]!;
      else {
        w[k * D + j] = row[j]! / standardization.std[j]!;
        bias -= (row[j]! * standardization.mean[j]!) / standardization.std[j]!;
      }
    }
    b[k] = bias;
  }
  return { rows, D, w, b };
}

/**
 * The class labels as a tensor `label` can be gathered from: int64 when every class is a safe
 * integer (always for logistic: 0 and 1), float64 for other numbers, else strings.
 */
function classTensor(model: ModelFile): OnnxTensor {
  const classes: readonly (number | string)[] = model.kind === 'logistic-regression' ? [0, 1] : model.classes;
  const dims = [classes.length];
  if (classes.every((c) => typeof c === 'number' && Number.isSafeInteger(c)))
    return { name: 'classes', dims, type: 'int64', values: BigInt64Array.from(classes, (c) => BigInt(c)) };
  if (classes.every((c) => typeof c === 'number')) return { name: 'classes', dims, type: 'double', values: Float64Array.from(classes as number[]) };
  return { name: 'classes', dims, type: 'string', values: classes.map(String) };
}

/** A float tensor of `values` rounded once to the chosen precision. */
function parameterTensor(name: string, dims: number[], values: Float64Array, precision: OnnxPrecision): OnnxTensor {
  return precision === 'float32'
    ? { name, dims, type: 'float', values: Float32Array.from(values) }
    : { name, dims, type: 'double', values: Float64Array.from(values) };
}

/**
 * The scores the graph computes: K rows of weights and biases on raw inputs. Softmax: the folded
 * model. Logistic: two rows, [−z/2, z/2] (halving is exact in binary floating point, subnormals
 * aside), so that softmax of the scores is [σ(−z), σ(z)] = [P(0), P(1)] and their argmax is 1 iff
 * z > 0. Why not Sigmoid: onnxruntime's float32 Sigmoid is accurate only in absolute terms
 * (σ(−17) = 4.1e-8 comes out as 8.9e-8, σ(−20.5) = 1.3e-9 as 0), while its Softmax keeps small
 * probabilities to a few ulps of their own size.
 */
function scoreRows(model: ModelFile): { K: number; D: number; w: Float64Array; b: Float64Array } {
  const folded = foldStandardization(model);
  const { D } = folded;
  if (model.kind === 'softmax-regression') return { K: folded.rows, D, w: folded.w, b: folded.b };
  const w = new Float64Array(2 * D);
  for (let j = 0; j < D; j++) {
    w[j] = -folded.w[j]! / 2;
    w[D + j] = folded.w[j]! / 2;
  }
  return { K: 2, D, w, b: Float64Array.of(-folded.b[0]! / 2, folded.b[0]! / 2) };
}

/**
 * The ONNX model of `model`. Input `X` [N, D]: raw feature values in the model's feature order.
 * Outputs `label` [N] (the class label, as dpt predict picks it: logistic class 1 iff z > 0,
 * softmax argmax z with the lowest index among ties) and `probabilities` [N, K] (logistic: K = 2,
 * P(class 0), P(class 1); softmax: softmax(z) in class-index order). The argmax is taken over the
 * scores, not the rounded probabilities, so two classes whose probabilities round equal are still
 * told apart as dpt predict tells them apart.
 */
export function onnxModelOf(model: ModelFile, precision: OnnxPrecision, producerVersion: string): OnnxModel {
  const { K, D, w, b } = scoreRows(model);
  const element = precision === 'float32' ? 'float' : 'double';
  const labels = classTensor(model);
  const initializers: OnnxTensor[] = [parameterTensor('coefficients', [K, D], w, precision), parameterTensor('intercepts', [K], b, precision), labels];
  const nodes: OnnxNode[] = [
    // z = X·Wᵀ + b with W stored as [K, D] (transB), the layout of the model file.
    { opType: 'Gemm', name: 'linear', inputs: ['X', 'coefficients', 'intercepts'], outputs: ['scores'], attributes: { transB: 1 } },
    { opType: 'Softmax', name: 'softmax', inputs: ['scores'], outputs: ['probabilities'], attributes: { axis: 1 } },
    { opType: 'ArgMax', name: 'class_index', inputs: ['scores'], outputs: ['class_index'], attributes: { axis: 1, keepdims: 0, select_last_index: 0 } },
    { opType: 'Gather', name: 'class_label', inputs: ['classes', 'class_index'], outputs: ['label'], attributes: { axis: 0 } },
  ];
  const classes = model.kind === 'logistic-regression' ? [0, 1] : model.classes;
  const docString =
    `dpt ${model.kind} model. Input X [N, ${D}]: raw feature values (${precision}) in the order of metadata dpt.features; ` +
    `standardization is folded into the weights. Outputs label [N] and probabilities [N, ${K}], column k for class k of dpt.classes.`;
  return {
    irVersion: ONNX_IR_VERSION,
    opsetVersion: ONNX_OPSET,
    producerName: 'dpt',
    producerVersion,
    docString,
    graph: {
      name: `dpt_${model.kind.replace('-', '_')}`,
      docString,
      nodes,
      initializers,
      inputs: [{ name: 'X', type: element, shape: ['N', D] }],
      outputs: [
        { name: 'label', type: labels.type, shape: ['N'] },
        { name: 'probabilities', type: element, shape: ['N', K] },
      ],
    },
    metadata: [
      ['dpt.kind', model.kind],
      ['dpt.features', JSON.stringify(model.features)],
      ['dpt.classes', JSON.stringify(classes)],
      ['dpt.label', model.label ?? ''],
      ['dpt.standardization', model.standardization === null ? 'none' : 'folded'],
      ['dpt.precision', precision],
    ],
  };
}
