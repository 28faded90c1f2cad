// Asks Linux to back a range of this process's anonymous memory with transparent huge pages
// (madvise MADV_HUGEPAGE), for the rows a worker holds in memory (issue #15). Where THP is in
// "madvise" mode (Debian's default), V8 never asks for them, so loading a 146 MB file into fresh
// WebAssembly memory took one page fault per 4 KiB page (~12 µs each in this VM: 0.43 s of a 0.44 s
// load); with 2 MiB pages the same load faults ~70 times. Only whole 2 MiB pages inside the range
// are advised; the contents and every computed bit are unchanged, it is a hint the kernel may ignore.
//
// Export: advise(view) → bytes advised (0: nothing whole to advise, not Linux, or refused).

#define _GNU_SOURCE
#include <node_api.h>
#include <stdint.h>
#include <stddef.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((uintptr_t)2 << 20)

static napi_value js_advise(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  double advised = 0;
  void *data = NULL;
  size_t byte_length = 0;
  bool is_typed = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) goto done;
  if (napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, "advise(view): view must be a typed array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length = 0;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || data == NULL) goto done;
  switch (type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: byte_length = length; break;
    case napi_int16_array: case napi_uint16_array: byte_length = length * 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: byte_length = length * 4; break;
    default: byte_length = length * 8; break;
  }
#ifdef __linux__
  {
    uintptr_t start = ((uintptr_t)data + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)data + byte_length) & ~(HUGE_PAGE - 1);
    if (end > start && madvise((void *)start, end - start, MADV_HUGEPAGE) == 0) advised = (double)(end - start);
  }
#endif
done:
  napi_create_double(env, advised, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "advise", NAPI_AUTO_LENGTH, js_advise, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "advise", fn) != napi_ok) return NULL;
  return exports;
}
