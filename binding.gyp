{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["native/original_dst.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "shared_counters",
      "sources": ["native/shared_counters.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
