// A worker's passes over all its rows before the first step (issue #15 item 4), each the same
// arithmetic in the same order as its JavaScript twin, so the same bits
// (test/unit/passes-native.test.ts):
//   standardize(x, D, mean, std)  x ← (x − mean_j) / std_j in float64, stored as float32
//                                 (shared/standardize.ts applyStandardization);
//   accumulateStats(x, D, order, from, to, out, offset, count) → count
//                                 Welford's update row by row, min and max
//                                 (shared/passes.ts accumulateStats; order null: rows from..to);
//   firstNonFinite(values) → index of the first NaN or ±Infinity, or −1
//                                 (shared/binary-dataset.ts's content check);
//   accumulateEval(x, y, D, order, from, to, w, b, out, offset)
//                                 the evaluation pass's loss and correct predictions, row by row
//                                 (shared/passes.ts accumulateEval: z = b + Σ w_j·x_j in j order,
//                                 log1p(exp(−|z|)) + max(z, 0) − y·z with fdlibm's exp and log1p,
//                                 which are V8's Math.exp and Math.log1p: native/fdlibm.h).
// Why native: each runs once per run (the evaluation once per evaluated epoch) over every row a
// worker holds (36 M values for flights_3m), and V8 runs such a loop mostly before it is
// optimized: 90–200 ms each in JavaScript, in every worker.

#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stddef.h>

#include "fdlibm.h"

static int typed(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  if (napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok || type != want) return 0;
  return 1;
}

static int whole(napi_env env, napi_value value, double *out) {
  return napi_get_value_double(env, value, out) == napi_ok && *out >= 0 && *out <= 9007199254740991.0 && *out == floor(*out);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/** An order argument: a Uint32Array, or null for the rows from..to themselves (order NULL). */
static int optional_order(napi_env env, napi_value value, uint32_t **order, size_t *length) {
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, value, &type) != napi_ok) return 0;
  if (type == napi_null) return 1;
  return typed(env, value, napi_uint32_array, (void **)order, length);
}

/** Whether positions [from, to) exist: in the order when there is one, else among `rows`. */
static int range_fits(double from, double to, const uint32_t *order, size_t orders, size_t rows) {
  return !(to > from) || to <= (double)(order == NULL ? rows : orders);
}

static napi_value js_standardize(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  float *x = NULL;
  double *mean = NULL, *std = NULL, d = 0;
  size_t n = 0, means = 0, stds = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || !typed(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !whole(env, argv[1], &d) || d < 1 || !typed(env, argv[2], napi_float64_array, (void **)&mean, &means) ||
      !typed(env, argv[3], napi_float64_array, (void **)&std, &stds) || means < (size_t)d || stds < (size_t)d || n % (size_t)d != 0)
    return fail(env, "standardize(x: Float32Array, D, mean: Float64Array(≥ D), std: Float64Array(≥ D)), x.length a multiple of D");
  const size_t D = (size_t)d;
  for (size_t base = 0; base < n; base += D) {
    for (size_t j = 0; j < D; j++) x[base + j] = (float)(((double)x[base + j] - mean[j]) / std[j]);
  }
  return NULL;
}

static napi_value js_accumulate_stats(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  float *x = NULL;
  uint32_t *order = NULL;
  double *out = NULL, d = 0, from = 0, to = 0, offset = 0, count = 0;
  size_t n = 0, orders = 0, outs = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8 || !typed(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !whole(env, argv[1], &d) || d < 1 || !optional_order(env, argv[2], &order, &orders) || !whole(env, argv[3], &from) ||
      !whole(env, argv[4], &to) || !typed(env, argv[5], napi_float64_array, (void **)&out, &outs) || !whole(env, argv[6], &offset) ||
      !whole(env, argv[7], &count))
    return fail(env, "accumulateStats(x: Float32Array, D, order: Uint32Array | null, from, to, out: Float64Array, offset, count)");
  const size_t D = (size_t)d, rows = n / D;
  if (offset + 4 * d > (double)outs || !range_fits(from, to, order, orders, rows)) return fail(env, "accumulateStats: a range outside x, order or out");
  double *mean = out + (size_t)offset, *m2 = mean + D, *min = m2 + D, *max = min + D;
  double count_now = count;
  for (size_t i = (size_t)from; i < (size_t)to; i++) {
    const size_t row = order == NULL ? i : order[i];
    if (row >= rows) return fail(env, "accumulateStats: an order entry past x's rows");
    const float *v = x + row * D;
    count_now += 1;
    for (size_t j = 0; j < D; j++) {
      const double value = (double)v[j];
      const double delta = value - mean[j];
      mean[j] += delta / count_now;
      m2[j] += delta * (value - mean[j]);
      if (value < min[j]) min[j] = value;
      if (value > max[j]) max[j] = value;
    }
  }
  napi_value result;
  napi_create_double(env, count_now, &result);
  return result;
}

static napi_value js_first_non_finite(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  float *values = NULL;
  size_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !typed(env, argv[0], napi_float32_array, (void **)&values, &n))
    return fail(env, "firstNonFinite(values: Float32Array)");
  double found = -1;
  // An exponent of all ones is NaN or ±Infinity; the bits, so no float comparison can be folded away.
  const uint32_t *bits = (const uint32_t *)values;
  for (size_t i = 0; i < n; i++) {
    if ((bits[i] & 0x7f800000u) == 0x7f800000u) {
      found = (double)i;
      break;
    }
  }
  napi_value result;
  napi_create_double(env, found, &result);
  return result;
}

static napi_value js_accumulate_eval(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  float *x = NULL;
  uint8_t *y = NULL;
  uint32_t *order = NULL;
  double *w = NULL, *out = NULL, d = 0, from = 0, to = 0, b = 0, offset = 0;
  size_t n = 0, labels = 0, orders = 0, weights = 0, outs = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 10 || !typed(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !typed(env, argv[1], napi_uint8_array, (void **)&y, &labels) || !whole(env, argv[2], &d) || d < 1 || !optional_order(env, argv[3], &order, &orders) ||
      !whole(env, argv[4], &from) ||
      !whole(env, argv[5], &to) || !typed(env, argv[6], napi_float64_array, (void **)&w, &weights) || napi_get_value_double(env, argv[7], &b) != napi_ok ||
      !typed(env, argv[8], napi_float64_array, (void **)&out, &outs) || !whole(env, argv[9], &offset))
    return fail(env, "accumulateEval(x: Float32Array, y: Uint8Array, D, order: Uint32Array | null, from, to, w: Float64Array, b, out: Float64Array, offset)");
  const size_t D = (size_t)d, rows = n / D < labels ? n / D : labels;
  if (weights < D || offset + 2 > (double)outs || !range_fits(from, to, order, orders, rows))
    return fail(env, "accumulateEval: a range outside x, y, order, w or out");
  double *sums = out + (size_t)offset;
  for (size_t i = (size_t)from; i < (size_t)to; i++) {
    const size_t row = order == NULL ? i : order[i];
    if (row >= rows) return fail(env, "accumulateEval: an order entry past x's rows");
    const float *v = x + row * D;
    double z = b;
    for (size_t j = 0; j < D; j++) z += w[j] * (double)v[j];
    const double label = (double)y[row];
    // Math.log1p(Math.exp(−|z|)) + Math.max(z, 0) − y·z, in that order (shared/model.ts logLoss).
    sums[0] += (dpt_log1p(dpt_exp(-fabs(z))) + (z > 0 ? z : 0.0)) - label * z;
    if ((z > 0 ? 1 : 0) == y[row]) sums[1] += 1;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } exported[] = {{"standardize", js_standardize}, {"accumulateStats", js_accumulate_stats}, {"firstNonFinite", js_first_non_finite},
                      {"accumulateEval", js_accumulate_eval}};
  for (size_t i = 0; i < sizeof exported / sizeof exported[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, exported[i].name, NAPI_AUTO_LENGTH, exported[i].fn, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, exported[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
