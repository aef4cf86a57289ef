// original_dst: reads the pre-NAT destination of a redirected TCP connection, getsockopt(SO_ORIGINAL_DST).
// originalDst(fd) returns { address, port, family }; it throws an Error (errno, syscall) when the lookup fails or off Linux.

#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif
#endif

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error(env, NULL, "original_dst: N-API call failed: " #call); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

/* Throws an Error with message, .code, .errno and .syscall like Node's own system errors. */
static napi_value throw_sys(napi_env env, const char *code, int err, const char *message) {
  napi_value msg, code_v, errno_v, syscall_v, error;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_error(env, code_v, msg, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return NULL;
  }
  if (napi_create_int32(env, err, &errno_v) == napi_ok) napi_set_named_property(env, error, "errno", errno_v);
  if (napi_create_string_utf8(env, "getsockopt", NAPI_AUTO_LENGTH, &syscall_v) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_v);
  napi_throw(env, error);
  return NULL;
}

static napi_value make_result(napi_env env, const char *address, uint16_t port, int family) {
  napi_value obj, addr_v, port_v, family_v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &addr_v));
  CHECK(napi_create_uint32(env, port, &port_v));
  CHECK(napi_create_int32(env, family, &family_v));
  CHECK(napi_set_named_property(env, obj, "address", addr_v));
  CHECK(napi_set_named_property(env, obj, "port", port_v));
  CHECK(napi_set_named_property(env, obj, "family", family_v));
  return obj;
}

static napi_value OriginalDst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype type = napi_undefined;
  if (argc >= 1) CHECK(napi_typeof(env, argv[0], &type));
  if (type != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "originalDst(fd): fd must be a number");
    return NULL;
  }
  int32_t fd = -1;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (fd < 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "originalDst(fd): fd must be >= 0 (is the socket open?)");
    return NULL;
  }
#ifdef __linux__
  char text[INET6_ADDRSTRLEN];
  char message[256];
  struct sockaddr_in v4;
  socklen_t len = sizeof(v4);
  memset(&v4, 0, sizeof(v4));
  /* Works for IPv4 sockets and for IPv4-mapped connections on a dual-stack IPv6 socket. */
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &v4, &len) == 0 && v4.sin_family == AF_INET) {
    if (inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text)) == NULL) return throw_sys(env, "EINVAL", errno, "inet_ntop failed");
    return make_result(env, text, ntohs(v4.sin_port), 4);
  }
  int err4 = errno;
  struct sockaddr_in6 v6;
  len = sizeof(v6);
  memset(&v6, 0, sizeof(v6));
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &v6, &len) == 0 && v6.sin6_family == AF_INET6) {
    if (inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text)) == NULL) return throw_sys(env, "EINVAL", errno, "inet_ntop failed");
    return make_result(env, text, ntohs(v6.sin6_port), 6);
  }
  /* ENOENT: no conntrack entry (the connection was not NATed); report the IPv4 attempt's error. */
  int err = err4 != 0 ? err4 : errno;
  snprintf(message, sizeof(message), "getsockopt(SO_ORIGINAL_DST) on fd %d failed: %s%s", fd, strerror(err),
           err == ENOENT ? " (the connection was not redirected by iptables)" : "");
  return throw_sys(env, err == ENOENT ? "ENOENT" : err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : "EORIGDST", err, message);
#else
  return throw_sys(env, "ENOTSUP", 0, "SO_ORIGINAL_DST is only available on Linux");
#endif
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, OriginalDst, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "originalDst", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
