// The epoch's row order (issue #15 item 4): the Fisher–Yates shuffle of shared/rng.ts's
// shuffleInPlace with its generator (xoshiro128**, 53-bit doubles), the same draws and the same
// swaps in the same order, so the same permutation bit for bit (test/unit/shuffle-native.test.ts).
// Why native: at 2.4 M training rows every swap lands at a random place in 9.6 MB and misses the
// cache; in JavaScript an epoch's order took 0.15–0.2 s, in every worker, on the epoch's first
// step. The draws do not depend on the values, so here they run AHEAD swaps early and the row to
// swap is prefetched while the earlier swaps proceed.
//
// Export: shuffle(values: Uint32Array, state: Uint32Array(4)) → undefined; `state` is the
// generator's seeded state (shared/rng.ts seedState) and is left as the JavaScript generator
// would leave it after the same draws.

#include <node_api.h>
#include <stdint.h>
#include <stddef.h>

#define AHEAD 16

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static inline uint32_t next_uint32(uint32_t s[4]) {
  const uint32_t result = rotl(s[1] * 5u, 7) * 9u;
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

/** floor(u · (i + 1)) for the generator's next double u in [0, 1): 27 + 26 bits over 2^53, as rng.ts. */
static inline uint32_t draw(uint32_t s[4], uint32_t i) {
  const uint32_t a = next_uint32(s) >> 5;
  const uint32_t b = next_uint32(s) >> 6;
  const double u = ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
  return (uint32_t)(u * ((double)i + 1.0)); // u·(i + 1) < i + 1 and ≥ 0: truncation is floor
}

static void shuffle(uint32_t *v, uint32_t n, uint32_t s[4]) {
  if (n < 2) return;
  uint32_t ring[AHEAD];
  // Iteration i (n − 1 down to 1) swaps v[i] with v[j_i]; j_i is drawn AHEAD iterations early, in
  // the same order as the loop would draw it.
  const uint32_t last = n - 1;
  uint32_t primed = 0;
  for (; primed < AHEAD && primed < last; primed++) {
    ring[primed] = draw(s, last - primed);
    __builtin_prefetch(&v[ring[primed]], 1, 0);
  }
  for (uint32_t i = last, k = 0; i > 0; i--, k = (k + 1) % AHEAD) {
    const uint32_t j = ring[k];
    if (i > AHEAD) {
      ring[k] = draw(s, i - AHEAD);
      __builtin_prefetch(&v[ring[k]], 1, 0);
    }
    const uint32_t held = v[i];
    v[i] = v[j];
    v[j] = held;
  }
}

static int uint32_view(napi_env env, napi_value value, uint32_t **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *raw = NULL;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok || type != napi_uint32_array) return 0;
  *data = (uint32_t *)raw;
  return 1;
}

static napi_value js_shuffle(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t *values = NULL, *state = NULL;
  size_t length = 0, state_length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !uint32_view(env, argv[0], &values, &length) ||
      !uint32_view(env, argv[1], &state, &state_length) || state_length != 4 || length > UINT32_MAX) {
    napi_throw_type_error(env, NULL, "shuffle(values, state): a Uint32Array and a Uint32Array(4)");
    return NULL;
  }
  if (length > 0 && values == NULL) return NULL;
  uint32_t s[4] = {state[0], state[1], state[2], state[3]};
  shuffle(values, (uint32_t)length, s);
  for (int i = 0; i < 4; i++) state[i] = s[i];
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "shuffle", NAPI_AUTO_LENGTH, js_shuffle, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "shuffle", fn) != napi_ok) return NULL;
  return exports;
}
