// shared_counters: 64-bit counters in memory shared by the sidecar's worker processes (memfd_create + mmap),
// updated with atomic instructions, so circuit-breaker limits hold across workers. Throws an Error on a bad argument,
// an index out of range or a failed system call (errno in .errno).

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

typedef struct {
  int64_t *base;
  size_t count; /* number of int64 cells */
  size_t bytes;
} region_t;

#define CHECK(call)                                                                \
  do {                                                                             \
    if ((call) != napi_ok) {                                                       \
      napi_throw_error(env, NULL, "shared_counters: N-API call failed: " #call);  \
      return NULL;                                                                 \
    }                                                                              \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[200];
  napi_value msg, code, error, errno_v;
  snprintf(message, sizeof(message), "%s failed: %s", what, strerror(err));
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_string_utf8(env, "ESHAREDCOUNTERS", NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_error(env, code, msg, &error) != napi_ok) {
    napi_throw_error(env, NULL, message);
    return NULL;
  }
  if (napi_create_int32(env, err, &errno_v) == napi_ok) napi_set_named_property(env, error, "errno", errno_v);
  napi_throw(env, error);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "shared_counters: missing argument");
    return 0;
  }
  return 1;
}

static int get_int64(napi_env env, napi_value v, int64_t *out, const char *name) {
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number) {
    char message[120];
    snprintf(message, sizeof(message), "shared_counters: %s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return 0;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int get_region(napi_env env, napi_value v, region_t **out) {
  napi_valuetype type = napi_undefined;
  void *data = NULL;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "shared_counters: the first argument must be a region from map()");
    return 0;
  }
  *out = (region_t *)data;
  if ((*out)->base == NULL) {
    napi_throw_error(env, "ERR_INVALID_STATE", "shared_counters: the region is unmapped");
    return 0;
  }
  return 1;
}

static int get_index(napi_env env, region_t *r, napi_value v, size_t *out) {
  int64_t i;
  if (!get_int64(env, v, &i, "index")) return 0;
  if (i < 0 || (uint64_t)i >= r->count) {
    char message[120];
    snprintf(message, sizeof(message), "shared_counters: index %lld is outside the region (0..%zu)", (long long)i, r->count - 1);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return 0;
  }
  *out = (size_t)i;
  return 1;
}

/* create(bytes): a new anonymous shared memory file of that size; returns its file descriptor (close-on-exec). */
static napi_value Create(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t bytes;
  if (!get_args(env, info, 1, argv) || !get_int64(env, argv[0], &bytes, "bytes")) return NULL;
  if (bytes <= 0 || bytes % 8 != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "shared_counters: bytes must be a positive multiple of 8");
    return NULL;
  }
#ifdef __linux__
  int fd = memfd_create("tsmesh-shared-counters", MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)bytes) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ftruncate", err);
  }
  CHECK(napi_create_int32(env, fd, &result));
  return result;
#else
  (void)result;
  return throw_errno(env, "memfd_create (Linux only)", ENOSYS);
#endif
}

static void finalize_region(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  region_t *r = (region_t *)data;
#ifdef __linux__
  if (r->base != NULL) munmap(r->base, r->bytes);
#endif
  free(r);
}

/* map(fd, bytes): maps the shared file; the mapping lives until the returned region is garbage collected. */
static napi_value Map(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int64_t fd, bytes;
  if (!get_args(env, info, 2, argv) || !get_int64(env, argv[0], &fd, "fd") || !get_int64(env, argv[1], &bytes, "bytes")) return NULL;
  if (fd < 0 || bytes <= 0 || bytes % 8 != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "shared_counters: map(fd >= 0, bytes > 0 and a multiple of 8)");
    return NULL;
  }
#ifdef __linux__
  void *base = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
  if (base == MAP_FAILED) return throw_errno(env, "mmap", errno);
  region_t *r = (region_t *)malloc(sizeof(region_t));
  if (r == NULL) {
    munmap(base, (size_t)bytes);
    return throw_errno(env, "malloc", ENOMEM);
  }
  r->base = (int64_t *)base;
  r->bytes = (size_t)bytes;
  r->count = (size_t)bytes / 8;
  if (napi_create_external(env, r, finalize_region, NULL, &result) != napi_ok) {
    finalize_region(env, r, NULL);
    napi_throw_error(env, NULL, "shared_counters: napi_create_external failed");
    return NULL;
  }
  return result;
#else
  (void)result;
  return throw_errno(env, "mmap (Linux only)", ENOSYS);
#endif
}

/* add(region, index, delta): atomically adds delta; returns the new value. */
static napi_value Add(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  region_t *r;
  size_t i;
  int64_t delta;
  if (!get_args(env, info, 3, argv) || !get_region(env, argv[0], &r) || !get_index(env, r, argv[1], &i) || !get_int64(env, argv[2], &delta, "delta")) return NULL;
  int64_t v = __atomic_add_fetch(&r->base[i], delta, __ATOMIC_SEQ_CST);
  CHECK(napi_create_int64(env, v, &result));
  return result;
}

/* get(region, index): the current value. */
static napi_value Get(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  region_t *r;
  size_t i;
  if (!get_args(env, info, 2, argv) || !get_region(env, argv[0], &r) || !get_index(env, r, argv[1], &i)) return NULL;
  CHECK(napi_create_int64(env, __atomic_load_n(&r->base[i], __ATOMIC_SEQ_CST), &result));
  return result;
}

/* exchange(region, index, value): stores value; returns the previous one. */
static napi_value Exchange(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  region_t *r;
  size_t i;
  int64_t value;
  if (!get_args(env, info, 3, argv) || !get_region(env, argv[0], &r) || !get_index(env, r, argv[1], &i) || !get_int64(env, argv[2], &value, "value")) return NULL;
  CHECK(napi_create_int64(env, __atomic_exchange_n(&r->base[i], value, __ATOMIC_SEQ_CST), &result));
  return result;
}

/*
 * tryAcquire(region, total, own, limit): when the cell `total` is below limit, adds 1 to it and to the cell `own`
 * (this worker's share, so its slots can be given back if it dies) and returns true; else changes nothing and
 * returns false.
 */
static napi_value TryAcquire(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  region_t *r;
  size_t total, own;
  int64_t limit;
  if (!get_args(env, info, 4, argv) || !get_region(env, argv[0], &r) || !get_index(env, r, argv[1], &total) || !get_index(env, r, argv[2], &own) ||
      !get_int64(env, argv[3], &limit, "limit")) return NULL;
  int64_t cur = __atomic_load_n(&r->base[total], __ATOMIC_SEQ_CST);
  bool ok = false;
  while (cur < limit) {
    if (__atomic_compare_exchange_n(&r->base[total], &cur, cur + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      __atomic_add_fetch(&r->base[own], 1, __ATOMIC_SEQ_CST);
      ok = true;
      break;
    }
  }
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  struct { const char *name; napi_callback cb; } fns[] = {
    {"create", Create}, {"map", Map}, {"add", Add}, {"get", Get}, {"exchange", Exchange}, {"tryAcquire", TryAcquire},
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    napi_value fn;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn));
    CHECK(napi_set_named_property(env, exports, fns[i].name, fn));
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
