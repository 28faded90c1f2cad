// Which model a run trains, from --model and the classes the data's labels hold (issue #12):
// 'auto' is logistic regression when the labels are exactly the numbers {0, 1}, else softmax
// regression over the K sorted classes. Refusals name the flag and the labels.

import { type ClassList, isBinaryClasses, listClasses } from '../shared/classes.js';
import { ConfigError } from '../shared/errors.js';
import { type ModelShape, shapeOf } from '../shared/model-shape.js';

/** The shape of the run's model over D features; throws ConfigError when the labels do not fit the choice. */
export function chooseModel(requested: 'auto' | 'logistic' | 'softmax', classes: ClassList, maxClasses: number, D: number): ModelShape {
  const K = classes.values.length;
  if (K > maxClasses) {
    throw new ConfigError(
      `the labels hold ${K.toLocaleString('en-US')} distinct classes, more than --max-classes ${maxClasses} allows (raise it, or check --label-column)`,
    );
  }
  if (K < 2) throw new ConfigError(`every label is ${listClasses(classes, 8)}: a model needs at least two classes to tell apart (check --label-column)`);
  const binary = isBinaryClasses(classes);
  if (requested === 'logistic' && !binary) {
    throw new ConfigError(`--model logistic needs labels that are exactly 0 and 1; these labels are ${listClasses(classes, 8)}: use --model softmax`);
  }
  const kind = requested === 'auto' ? (binary ? 'logistic' : 'softmax') : requested;
  return shapeOf(kind, K, D);
}
