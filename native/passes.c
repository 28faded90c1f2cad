// A worker's passes over all its rows before the first step (issue #15 item 4), each the same
// arithmetic in the same order as its JavaScript twin, so the same bits
// (test/unit/passes-native.test.ts):
//   standardize(x, D, mean, std)  x ← (x − mean_j) / std_j in float64, stored as float32
//                                 (shared/standardize.ts applyStandardization);
//   accumulateStats(x, D, order, from, to, out, offset, count) → count
//                                 Welford's update row by row, min and max
//                                 (shared/passes.ts accumulateStats; order null: rows from..to);
//   firstNonFinite(values) → index of the first NaN or ±Infinity, or −1
//                                 (shared/binary-dataset.ts's content check).
// Why native: each runs once per run over every row a worker holds (36 M values for
// flights_3m), and V8 runs such a loop mostly before it is optimized: 90–200 ms each in
// JavaScript, in every worker, between its start and the first step.

#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stddef.h>

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
  napi_valuetype order_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8 || !typed(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !whole(env, argv[1], &d) || d < 1 || napi_typeof(env, argv[2], &order_type) != napi_ok ||
      (order_type != napi_null && !typed(env, argv[2], napi_uint32_array, (void **)&order, &orders)) || !whole(env, argv[3], &from) ||
      !whole(env, argv[4], &to) || !typed(env, argv[5], napi_float64_array, (void **)&out, &outs) || !whole(env, argv[6], &offset) ||
      !whole(env, argv[7], &count))
    return fail(env, "accumulateStats(x: Float32Array, D, order: Uint32Array | null, from, to, out: Float64Array, offset, count)");
  const size_t D = (size_t)d, rows = n / D;
  if (offset + 4 * d > (double)outs || (to > from && (order == NULL ? to > (double)rows : to > (double)orders)))
    return fail(env, "accumulateStats: a range outside x, order or out");
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

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } exported[] = {{"standardize", js_standardize}, {"accumulateStats", js_accumulate_stats}, {"firstNonFinite", js_first_non_finite}};
  for (size_t i = 0; i < sizeof exported / sizeof exported[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, exported[i].name, NAPI_AUTO_LENGTH, exported[i].fn, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, exported[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
