// Paged rows through a read-only memory map of a .dpt file (issue #15 item 3): one call per chunk
// copies the chunk's rows (features and labels, in the chunk's order) from the mapping into the
// buffer the kernel reads, where the pread path would put one system call per row under a row
// shuffle. This file only maps and copies; which blocks passed their CRC checks is the caller's
// bitmap (worker/mapped-rows.ts), consulted here before any byte of a row is copied.
//
// A file cut short under the mapping makes a load past its new end raise SIGBUS. The copy runs
// under a guard: a SIGBUS whose address lies in the mapping being copied, on the thread copying,
// jumps back (siglongjmp) and the call returns an error code; any other SIGBUS goes to the handler
// that was there before (or the default action), so nothing else changes. SIGSEGV, V8's trap
// signal for WebAssembly bounds, is never touched.
//
// Exports: open(path, fileBytes, dataOffset, labelsOffset, rows, features, labelBytes) → handle;
// gather(handle, order, from, to, x, y, verified, missing) → 0 copied, n > 0 blocks missing,
// -1 faulted (missing[0] = file offset of the fault); size(handle) (fstat, for messages);
// close(handle). Unmapped on close, or by the handle's finalizer if never closed.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/** CRC block size of the .dpt format (shared/binary-dataset.ts BLOCK_BYTES). */
#define BLOCK_SHIFT 20

typedef struct {
  uint8_t *base;   /* NULL once closed */
  size_t length;   /* bytes mapped: the file's size at open */
  int fd;
  uint64_t data_offset;
  uint64_t labels_offset;
  uint64_t rows;
  uint32_t features;
  uint32_t label_bytes;
} Mapping;

/* The guard of a copy under way on this thread (initial-exec TLS: safe to read in a handler). */
typedef struct {
  sigjmp_buf jump;
  const uint8_t *from;
  const uint8_t *to;
  volatile uintptr_t fault;
} Guard;
static __thread Guard *volatile active_guard __attribute__((tls_model("initial-exec"))) = NULL;

static struct sigaction previous_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_installed = 0;

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
  Guard *guard = active_guard;
  if (guard != NULL && info != NULL && (const uint8_t *)info->si_addr >= guard->from && (const uint8_t *)info->si_addr < guard->to) {
    guard->fault = (uintptr_t)info->si_addr;
    siglongjmp(guard->jump, 1);
  }
  // Not ours: behave as if this handler were not there.
  if ((previous_bus.sa_flags & SA_SIGINFO) != 0 && previous_bus.sa_sigaction != NULL) {
    previous_bus.sa_sigaction(signal_number, info, context);
    return;
  }
  if ((previous_bus.sa_flags & SA_SIGINFO) == 0 && previous_bus.sa_handler != SIG_DFL && previous_bus.sa_handler != SIG_IGN) {
    previous_bus.sa_handler(signal_number);
    return;
  }
  struct sigaction fallback;
  memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(SIGBUS, &fallback, NULL);
  raise(SIGBUS);
}

static void install_handler(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigbus;
  sigemptyset(&action.sa_mask);
  // SA_NODEFER: SIGBUS stays unblocked inside the handler, so siglongjmp needs no saved mask
  // (sigsetjmp(…, 0) costs no system call per chunk).
  action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  if (sigaction(SIGBUS, &action, &previous_bus) == 0) handler_installed = 1;
}

static napi_value throw_errno(napi_env env, const char *what, const char *path, int error_number) {
  char message[1024];
  snprintf(message, sizeof message, "%s: %s: %s", path, what, strerror(error_number));
  napi_throw_error(env, "DPT_MAPPED_FILE", message);
  return NULL;
}

static void unmap(Mapping *mapping) {
  if (mapping->base != NULL) {
    munmap(mapping->base, mapping->length);
    mapping->base = NULL;
  }
  if (mapping->fd >= 0) {
    close(mapping->fd);
    mapping->fd = -1;
  }
}

static void finalize_mapping(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Mapping *mapping = data;
  unmap(mapping);
  free(mapping);
}

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) {                          \
      napi_throw_error(env, NULL, "N-API call failed"); \
      return NULL;                                    \
    }                                                 \
  } while (0)

static int get_u64(napi_env env, napi_value value, uint64_t *out) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok || !(number >= 0) || number > 9007199254740992.0 || number != (double)(uint64_t)number) return 0;
  *out = (uint64_t)number;
  return 1;
}

static Mapping *mapping_of(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a mapped-file handle");
    return NULL;
  }
  Mapping *mapping = data;
  if (mapping->base == NULL) {
    napi_throw_error(env, NULL, "mapped file used after close");
    return NULL;
  }
  return mapping;
}

/* open(path, fileBytes, dataOffset, labelsOffset, rows, features, labelBytes) */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "open(path, fileBytes, dataOffset, labelsOffset, rows, features, labelBytes)");
    return NULL;
  }
  char path[4096];
  size_t path_length = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_length) != napi_ok || path_length >= sizeof path - 1) {
    napi_throw_type_error(env, NULL, "path: a string under 4 KiB");
    return NULL;
  }
  uint64_t file_bytes, data_offset, labels_offset, rows, features, label_bytes;
  if (!get_u64(env, argv[1], &file_bytes) || !get_u64(env, argv[2], &data_offset) || !get_u64(env, argv[3], &labels_offset) ||
      !get_u64(env, argv[4], &rows) || !get_u64(env, argv[5], &features) || !get_u64(env, argv[6], &label_bytes) || features == 0 ||
      features > UINT32_MAX || (label_bytes != 1 && label_bytes != 2) || data_offset + rows * 4 * features > labels_offset ||
      labels_offset + rows * label_bytes > file_bytes) {
    napi_throw_range_error(env, NULL, "open: bad layout");
    return NULL;
  }
  pthread_once(&handler_once, install_handler);
  if (!handler_installed) return throw_errno(env, "cannot install the SIGBUS guard", path, EINVAL);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "cannot open", path, errno);
  struct stat status;
  if (fstat(fd, &status) != 0) {
    int error_number = errno;
    close(fd);
    return throw_errno(env, "cannot stat", path, error_number);
  }
  if ((uint64_t)status.st_size != file_bytes) {
    close(fd);
    char message[1200];
    snprintf(message, sizeof message, "%s: %llu bytes, expected %llu (changed since it was opened?)", path, (unsigned long long)status.st_size,
             (unsigned long long)file_bytes);
    napi_throw_error(env, "DPT_MAPPED_FILE", message);
    return NULL;
  }
  void *base = mmap(NULL, (size_t)file_bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int error_number = errno;
    close(fd);
    return throw_errno(env, "cannot map", path, error_number);
  }
  Mapping *mapping = malloc(sizeof *mapping);
  if (mapping == NULL) {
    munmap(base, (size_t)file_bytes);
    close(fd);
    return throw_errno(env, "cannot map", path, ENOMEM);
  }
  mapping->base = base;
  mapping->length = (size_t)file_bytes;
  mapping->fd = fd;
  mapping->data_offset = data_offset;
  mapping->labels_offset = labels_offset;
  mapping->features = (uint32_t)features;
  mapping->label_bytes = (uint32_t)label_bytes;
  mapping->rows = rows;
  napi_value handle;
  if (napi_create_external(env, mapping, finalize_mapping, NULL, &handle) != napi_ok) {
    unmap(mapping);
    free(mapping);
    napi_throw_error(env, NULL, "N-API call failed");
    return NULL;
  }
  return handle;
}

static int typed_array(napi_env env, napi_value value, napi_typedarray_type *type, size_t *length, void **data) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, value, type, length, data, &buffer, &offset) == napi_ok;
}

/*
 * gather(handle, order, from, to, x, y, verified, missing): rows order[from..to) into rows
 * [0, to − from) of x (Float32Array) and y (Uint8Array, or Uint16Array). verified holds one byte
 * per content block (non-zero: checked). When a row needs a block not verified yet, nothing is
 * copied: the missing blocks (up to missing's length) are listed in missing and their count
 * returned. Else the rows are copied and 0 returned; −1 when the mapping faulted (the file is
 * shorter than when it was mapped), missing[0] then holding the file offset of the fault.
 */
static napi_value js_gather(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 8) {
    napi_throw_type_error(env, NULL, "gather(handle, order, from, to, x, y, verified, missing)");
    return NULL;
  }
  Mapping *mapping = mapping_of(env, argv[0]);
  if (mapping == NULL) return NULL;
  napi_typedarray_type order_type, x_type, y_type, verified_type, missing_type;
  size_t order_length, x_length, y_length, verified_length, missing_length;
  void *order_data, *x_data, *y_data, *verified_data, *missing_data;
  uint64_t from, to;
  if (!typed_array(env, argv[1], &order_type, &order_length, &order_data) || order_type != napi_uint32_array ||
      !typed_array(env, argv[4], &x_type, &x_length, &x_data) || x_type != napi_float32_array ||
      !typed_array(env, argv[5], &y_type, &y_length, &y_data) || (y_type != napi_uint8_array && y_type != napi_uint16_array) ||
      !typed_array(env, argv[6], &verified_type, &verified_length, &verified_data) || verified_type != napi_uint8_array ||
      !typed_array(env, argv[7], &missing_type, &missing_length, &missing_data) || missing_type != napi_float64_array || missing_length == 0 ||
      !get_u64(env, argv[2], &from) || !get_u64(env, argv[3], &to)) {
    napi_throw_type_error(env, NULL, "gather: expected (handle, Uint32Array, from, to, Float32Array, Uint8Array | Uint16Array, Uint8Array, Float64Array)");
    return NULL;
  }
  const size_t D = mapping->features;
  const size_t count = (size_t)(to - from);
  const size_t y_bytes = y_type == napi_uint8_array ? 1 : 2;
  if (from > to || to > order_length || count > y_length || count * D > x_length || (mapping->label_bytes == 2 && y_bytes == 1)) {
    napi_throw_range_error(env, NULL, "gather: rows out of range, a buffer too small, or uint16 labels into a Uint8Array");
    return NULL;
  }
  const uint32_t *order = (const uint32_t *)order_data + from;
  const uint8_t *verified = verified_data;
  double *missing = missing_data;
  const uint64_t row_bytes = 4 * (uint64_t)D;
  const uint64_t label_bytes = mapping->label_bytes;
  const uint64_t labels_start = mapping->labels_offset - mapping->data_offset; /* labels, relative to dataOffset */
  const uint64_t blocks = verified_length;
  // Pass 1: every block the rows touch must have passed its checks before any byte is used.
  size_t missing_count = 0;
  for (size_t i = 0; i < count; i++) {
    const uint64_t row = order[i];
    if (row >= mapping->rows) {
      napi_throw_range_error(env, NULL, "gather: a row id past the file's rows");
      return NULL;
    }
    const uint64_t first = (row * row_bytes) >> BLOCK_SHIFT;
    const uint64_t last = (row * row_bytes + row_bytes - 1) >> BLOCK_SHIFT;
    const uint64_t label_block = (labels_start + row * label_bytes) >> BLOCK_SHIFT;
    for (uint64_t block = first; block <= last + 1; block++) {
      const uint64_t b = block <= last ? block : label_block;
      if (b >= blocks) {
        napi_throw_range_error(env, NULL, "gather: a block past the verified bitmap");
        return NULL;
      }
      if (verified[b] != 0) continue;
      // Listed once: a short list is scanned (missing is small; this path runs once per block).
      size_t k = 0;
      while (k < missing_count && missing[k] != (double)b) k++;
      if (k == missing_count) {
        missing[missing_count++] = (double)b;
        if (missing_count == missing_length) goto done_checking;
      }
    }
  }
done_checking:;
  napi_value result;
  if (missing_count > 0) {
    CHECK(napi_create_int32(env, (int32_t)missing_count, &result));
    return result;
  }
  // Pass 2: copy, under the SIGBUS guard.
  Guard guard;
  guard.from = mapping->base;
  guard.to = mapping->base + mapping->length;
  guard.fault = 0;
  if (sigsetjmp(guard.jump, 0) != 0) {
    active_guard = NULL;
    missing[0] = (double)(guard.fault - (uintptr_t)mapping->base);
    CHECK(napi_create_int32(env, -1, &result));
    return result;
  }
  active_guard = &guard;
  const uint8_t *features = mapping->base + mapping->data_offset;
  const uint8_t *labels = mapping->base + mapping->labels_offset;
  float *x = x_data;
  // Loads of rows 32 places ahead are started early: rows of a shuffle miss every cache and the
  // TLB (8 ahead measured 1.7–1.9 M rows/s in bench:paged, 32 ahead 1.9–3.0 M).
  enum { AHEAD = 32 };
  for (size_t i = 0; i < count && i < AHEAD; i++) __builtin_prefetch(features + order[i] * row_bytes);
  for (size_t i = 0; i < count; i++) {
    if (i + AHEAD < count) {
      __builtin_prefetch(features + order[i + AHEAD] * row_bytes);
      __builtin_prefetch(labels + order[i + AHEAD] * label_bytes);
    }
    memcpy(x + i * D, features + order[i] * row_bytes, row_bytes);
  }
  if (y_bytes == 1) {
    uint8_t *y = y_data;
    for (size_t i = 0; i < count; i++) y[i] = labels[order[i]];
  } else if (label_bytes == 1) {
    uint16_t *y = y_data;
    for (size_t i = 0; i < count; i++) y[i] = labels[order[i]];
  } else {
    uint16_t *y = y_data;
    for (size_t i = 0; i < count; i++) memcpy(y + i, labels + 2 * (uint64_t)order[i], 2);
  }
  active_guard = NULL;
  CHECK(napi_create_int32(env, 0, &result));
  return result;
}

/* close(handle): unmaps now (the finalizer then has nothing to do). */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  if (argc != 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  unmap(data);
  return NULL;
}

/* size(handle): the file's size now (fstat), for messages after a fault; −1 if fstat fails. */
static napi_value js_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Mapping *mapping = argc == 1 ? mapping_of(env, argv[0]) : NULL;
  if (mapping == NULL) return NULL;
  struct stat status;
  napi_value result;
  CHECK(napi_create_double(env, fstat(mapping->fd, &status) == 0 ? (double)status.st_size : -1, &result));
  return result;
}

NAPI_MODULE_INIT() {
  const napi_property_descriptor properties[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gather", NULL, js_gather, NULL, NULL, NULL, napi_enumerable, NULL},
      {"size", NULL, js_size, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
