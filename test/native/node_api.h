/* A stand-in for Node-API's header: enough for native/kernel.c to compile into a plain program
   (the cross-architecture check calls its kernels directly; no N-API function is ever called). */
#pragma once
#include <stddef.h>
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef enum { napi_ok } napi_status;
typedef enum { napi_uint8_array = 1 } napi_typedarray_type;
typedef enum { napi_default = 0 } napi_property_attributes;
typedef napi_value (*napi_callback)(napi_env, napi_callback_info);
typedef struct {
  const char *utf8name; napi_value name; napi_callback method; napi_callback getter; napi_callback setter; napi_value value;
  napi_property_attributes attributes; void *data;
} napi_property_descriptor;
#define NAPI_AUTO_LENGTH ((size_t)-1)
#define NAPI_MODULE_INIT() napi_value dpt_module_init(napi_env env, napi_value exports)
static inline napi_status napi_throw_range_error(napi_env e, const char *c, const char *m) { (void)e; (void)c; (void)m; return napi_ok; }
static inline napi_status napi_throw_type_error(napi_env e, const char *c, const char *m) { (void)e; (void)c; (void)m; return napi_ok; }
static inline napi_status napi_get_value_double(napi_env e, napi_value v, double *r) { (void)e; (void)v; *r = 0; return napi_ok; }
static inline napi_status napi_get_value_string_utf8(napi_env e, napi_value v, char *b, size_t n, size_t *r) { (void)e; (void)v; if (n) b[0] = 0; *r = 0; return napi_ok; }
static inline napi_status napi_get_typedarray_info(napi_env e, napi_value v, napi_typedarray_type *t, size_t *l, void **d, napi_value *a, size_t *o) { (void)e; (void)v; (void)t; (void)l; (void)d; (void)a; (void)o; return napi_ok; }
static inline napi_status napi_get_cb_info(napi_env e, napi_callback_info i, size_t *c, napi_value *a, napi_value *t, void **d) { (void)e; (void)i; (void)c; (void)a; (void)t; (void)d; return napi_ok; }
static inline napi_status napi_create_double(napi_env e, double v, napi_value *r) { (void)e; (void)v; *r = NULL; return napi_ok; }
static inline napi_status napi_create_string_utf8(napi_env e, const char *s, size_t n, napi_value *r) { (void)e; (void)s; (void)n; *r = NULL; return napi_ok; }
static inline napi_status napi_define_properties(napi_env e, napi_value o, size_t n, const napi_property_descriptor *p) { (void)e; (void)o; (void)n; (void)p; return napi_ok; }
