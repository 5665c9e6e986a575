/* The public C API (tessera/tessera.h), used from plain C11.
 *
 * Needs models/mlp (scripts/gen_models.py); without it the test prints why and
 * exits 77, which CTest reports as skipped. Every check that fails is printed;
 * the exit status is 1 when any failed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/tessera.h"

#ifndef TESSERA_MODELS_DIR
#define TESSERA_MODELS_DIR "models"
#endif

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond, ...)                                             \
  do {                                                               \
    ++g_checks;                                                      \
    if (!(cond)) {                                                   \
      ++g_failures;                                                  \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                  \
      fprintf(stderr, "\n");                                         \
    }                                                                \
  } while (0)

/* Checks that `s` is a success; prints and frees it otherwise. Returns 1 on success. */
static int ok_status(tsr_status_t* s, const char* what) {
  ++g_checks;
  if (s == NULL) return 1;
  ++g_failures;
  fprintf(stderr, "FAIL %s: code %d: %s\n", what, (int)tsr_status_code(s), tsr_status_message(s));
  tsr_status_free(s);
  return 0;
}

/* Checks that `s` is an error (with a non-empty message, and `code` unless it
 * is -1, and containing `needle` unless NULL), then frees it. */
static void expect_error(tsr_status_t* s, int32_t code, const char* needle, const char* what) {
  ++g_checks;
  if (s == NULL) {
    ++g_failures;
    fprintf(stderr, "FAIL %s: expected an error, got success\n", what);
    return;
  }
  const char* msg = tsr_status_message(s);
  int32_t got = tsr_status_code(s);
  if (got == TSR_OK || (code >= 0 && got != code) || msg == NULL || msg[0] == '\0' ||
      (needle && strstr(msg, needle) == NULL)) {
    ++g_failures;
    fprintf(stderr, "FAIL %s: got code %d (want %d) message '%s' (want it to contain '%s')\n", what, (int)got,
            (int)code, msg ? msg : "(null)", needle ? needle : "");
  } else {
    printf("ok: %s -> [%d] %s\n", what, (int)got, msg);
  }
  tsr_status_free(s);
}

static char* path_join(const char* a, const char* b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char* p = (char*)malloc(n);
  snprintf(p, n, "%s/%s", a, b);
  return p;
}

static int file_exists(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) return 0;
  fclose(f);
  return 1;
}

static void* read_file(const char* path, size_t* out_size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void* buf = malloc(n > 0 ? (size_t)n : 1);
  if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *out_size = (size_t)n;
  return buf;
}

/* numpy.allclose on float32 tensors of equal shape. */
static int allclose_f32(tsr_tensor_t* got, tsr_tensor_t* want, double rtol, double atol) {
  if (tsr_tensor_dtype(got) != TSR_DTYPE_F32 || tsr_tensor_dtype(want) != TSR_DTYPE_F32) return 0;
  if (tsr_tensor_rank(got) != tsr_tensor_rank(want)) return 0;
  for (size_t d = 0; d < tsr_tensor_rank(got); ++d)
    if (tsr_tensor_dims(got)[d] != tsr_tensor_dims(want)[d]) return 0;
  if (tsr_tensor_nbytes(got) != tsr_tensor_nbytes(want)) return 0;
  const float* a = (const float*)tsr_tensor_data(got);
  const float* b = (const float*)tsr_tensor_data(want);
  size_t n = tsr_tensor_nbytes(got) / sizeof(float);
  double max_abs = 0;
  int ok = 1;
  for (size_t i = 0; i < n; ++i) {
    double diff = fabs((double)a[i] - (double)b[i]);
    if (diff > max_abs) max_abs = diff;
    if (!(diff <= atol + rtol * fabs((double)b[i]))) ok = 0;
  }
  printf("allclose: %zu elements, max abs error %.3g -> %s\n", n, max_abs, ok ? "ok" : "MISMATCH");
  return ok;
}

/* Runs a one-input, one-output session; returns the output or NULL (after a failed check). */
static tsr_tensor_t* run_one(tsr_session_t* s, const char* in_name, const tsr_tensor_t* in, const char* what) {
  const char* names[1] = {in_name};
  const tsr_tensor_t* ins[1] = {in};
  tsr_tensor_t* outs[1] = {NULL};
  if (!ok_status(tsr_session_run(s, names, ins, 1, NULL, 1, outs), what)) return NULL;
  CHECK(outs[0] != NULL, "%s returned no output", what);
  return outs[0];
}

static void test_status_and_options(void) {
  CHECK(tsr_version() != NULL && tsr_version()[0] != '\0', "empty version");
  CHECK(tsr_status_code(NULL) == TSR_OK, "code of NULL status");
  CHECK(tsr_status_message(NULL) != NULL && tsr_status_message(NULL)[0] == '\0', "message of NULL status");

  tsr_options_t* opts = NULL;
  if (!ok_status(tsr_options_create(&opts), "tsr_options_create")) return;
  CHECK(opts != NULL, "no options object");
  ok_status(tsr_options_set(opts, "devices", "cpu"), "set devices");
  ok_status(tsr_options_set(opts, "threads", "1"), "set threads");
  ok_status(tsr_options_set(opts, "opt_level", "2"), "set opt_level");
  expect_error(tsr_options_set(opts, "no_such_option", "1"), TSR_ERR_INVALID_ARGUMENT, "no_such_option",
               "unknown option key");
  expect_error(tsr_options_set(opts, "threads", "many"), TSR_ERR_INVALID_ARGUMENT, NULL, "bad threads value");
  tsr_options_free(opts);
  tsr_options_free(NULL); /* freeing NULL is a no-op */
  tsr_status_free(NULL);
  tsr_string_free(NULL);
}

static void test_tensors(void) {
  int64_t dims[2] = {2, 3};
  float data[6] = {1, 2, 3, 4, 5, 6};
  tsr_tensor_t* t = NULL;
  if (ok_status(tsr_tensor_create_from_data(TSR_DTYPE_F32, dims, 2, data, sizeof data, &t), "tensor from data")) {
    CHECK(tsr_tensor_dtype(t) == TSR_DTYPE_F32, "dtype %d", (int)tsr_tensor_dtype(t));
    CHECK(tsr_tensor_rank(t) == 2, "rank %zu", tsr_tensor_rank(t));
    CHECK(tsr_tensor_dims(t)[0] == 2 && tsr_tensor_dims(t)[1] == 3, "dims");
    CHECK(tsr_tensor_nbytes(t) == sizeof data, "nbytes %zu", tsr_tensor_nbytes(t));
    CHECK(memcmp(tsr_tensor_data(t), data, sizeof data) == 0, "data not copied");
    tsr_tensor_free(t);
  }
  t = NULL;
  expect_error(tsr_tensor_create_from_data(TSR_DTYPE_F32, dims, 2, data, sizeof data - 4, &t), -1, NULL,
               "tensor with wrong nbytes");
  CHECK(t == NULL, "a tensor was returned with an error");
  tsr_tensor_free(NULL);
}

/* config: a deployment config held in memory (tsr_options_load_config_string). */
static void test_config_string(const char* model_path) {
  tsr_options_t* o = NULL;
  if (!ok_status(tsr_options_create(&o), "options for config")) return;
  const char* cfg = "[inference]\ndevices = [\"cpu\"]\nthreads = 2\n[inference.memory]\nmax_alloc_bytes = \"1GiB\"\n";
  ok_status(tsr_options_load_config_string(o, cfg, NULL), "load config string");
  char* js = NULL;
  if (ok_status(tsr_options_json(o, &js), "options json")) {
    CHECK(js && strstr(js, "\"threads\":\"2\"") && strstr(js, "\"max_alloc_bytes\":\"1073741824\""),
          "options json after the config: %s", js ? js : "(null)");
    tsr_string_free(js);
  }
  expect_error(tsr_options_load_config_string(o, "[inference]\nthreads = \"two\"\n", "inference"),
               TSR_ERR_INVALID_ARGUMENT, "<string>:2:11: inference.threads", "bad config string");
  expect_error(tsr_options_load_config_string(o, cfg, "serving"), TSR_ERR_INVALID_ARGUMENT, "serving",
               "unknown workload");
  tsr_session_t* s = NULL;
  if (ok_status(tsr_session_create_from_file(model_path, o, &s), "session with a config string")) tsr_session_free(s);
  tsr_options_free(o);
}

int main(void) {
  const char* env = getenv("TESSERA_MODELS_DIR");
  const char* models = (env && env[0]) ? env : TESSERA_MODELS_DIR;
  char* mlp_dir = path_join(models, "mlp");
  char* model_path = path_join(mlp_dir, "model.onnx");
  char* input_path = path_join(mlp_dir, "test_data_set_0/input_0.pb");
  char* output_path = path_join(mlp_dir, "test_data_set_0/output_0.pb");
  if (!file_exists(model_path) || !file_exists(input_path) || !file_exists(output_path)) {
    printf("SKIP: %s or its test data is missing; generate the models with "
           ".venv/bin/python scripts/gen_models.py --out models\n",
           model_path);
    free(mlp_dir); free(model_path); free(input_path); free(output_path);
    return 77;
  }

  test_status_and_options();
  test_tensors();
  test_config_string(model_path); /* config */

  tsr_options_t* opts = NULL;
  ok_status(tsr_options_create(&opts), "options");
  ok_status(tsr_options_set(opts, "devices", "cpu"), "set devices");

  /* ---- a session from a file ---- */
  tsr_session_t* sess = NULL;
  if (!ok_status(tsr_session_create_from_file(model_path, opts, &sess), "create session from file") || !sess) {
    fprintf(stderr, "cannot continue without a session\n");
    tsr_options_free(opts);
    free(mlp_dir); free(model_path); free(input_path); free(output_path);
    return 1;
  }
  CHECK(tsr_session_input_count(sess) == 1, "input count %zu", tsr_session_input_count(sess));
  CHECK(tsr_session_output_count(sess) == 1, "output count %zu", tsr_session_output_count(sess));
  const char* in_name = NULL;
  const char* out_name = NULL;
  int32_t dtype = 0;
  size_t rank = 0;
  const int64_t* dims = NULL;
  const char* const* dim_names = NULL;
  if (ok_status(tsr_session_input_info(sess, 0, &in_name, &dtype, &rank, &dims, &dim_names), "input info")) {
    CHECK(in_name && strcmp(in_name, "input") == 0, "input name '%s'", in_name ? in_name : "(null)");
    CHECK(dtype == TSR_DTYPE_F32, "input dtype %d", (int)dtype);
    CHECK(rank == 2 && dims && dims[0] == 4 && dims[1] == 784, "input shape");
    CHECK(dim_names && dim_names[0] && dim_names[0][0] == '\0', "a known dim must have an empty symbol");
  }
  if (ok_status(tsr_session_output_info(sess, 0, &out_name, &dtype, &rank, &dims, NULL), "output info")) {
    CHECK(out_name && strcmp(out_name, "output") == 0, "output name '%s'", out_name ? out_name : "(null)");
    CHECK(dtype == TSR_DTYPE_F32, "output dtype %d", (int)dtype);
    CHECK(rank == 2 && dims && dims[0] == 4 && dims[1] == 10, "output shape");
  }
  expect_error(tsr_session_input_info(sess, 5, &in_name, &dtype, &rank, &dims, NULL), -1, NULL,
               "input info index out of range");

  /* ---- run and compare with PyTorch's output ---- */
  tsr_tensor_t* input = NULL;
  tsr_tensor_t* expected = NULL;
  char* pb_name = NULL;
  ok_status(tsr_tensor_load_pb(input_path, &input, &pb_name), "load input_0.pb");
  CHECK(pb_name && strcmp(pb_name, "input") == 0, "pb name '%s'", pb_name ? pb_name : "(null)");
  tsr_string_free(pb_name);
  ok_status(tsr_tensor_load_pb(output_path, &expected, NULL), "load output_0.pb");
  tsr_tensor_t* out = NULL;
  if (input && expected) {
    out = run_one(sess, "input", input, "run");
    if (out) CHECK(allclose_f32(out, expected, 1e-3, 1e-4), "output differs from PyTorch's");

    /* Outputs requested by name. */
    const char* names[1] = {"input"};
    const tsr_tensor_t* ins[1] = {input};
    const char* out_names[1] = {"output"};
    tsr_tensor_t* outs[1] = {NULL};
    if (ok_status(tsr_session_run(sess, names, ins, 1, out_names, 1, outs), "run with output names")) {
      CHECK(outs[0] && out && tsr_tensor_nbytes(outs[0]) == tsr_tensor_nbytes(out) &&
                memcmp(tsr_tensor_data(outs[0]), tsr_tensor_data(out), tsr_tensor_nbytes(out)) == 0,
            "two runs on the same input differ");
      tsr_tensor_free(outs[0]);
    }

    /* ---- run error paths ---- */
    outs[0] = NULL;
    const char* bad_names[1] = {"no_such_input"};
    expect_error(tsr_session_run(sess, bad_names, ins, 1, NULL, 1, outs), -1, "no_such_input", "wrong input name");
    CHECK(outs[0] == NULL, "output returned with an error");

    const char* bad_out[1] = {"no_such_output"};
    expect_error(tsr_session_run(sess, names, ins, 1, bad_out, 1, outs), -1, "no_such_output",
                 "wrong output name");

    expect_error(tsr_session_run(sess, names, ins, 0, NULL, 1, outs), -1, "input", "missing input");

    int64_t good_dims[2] = {4, 784};
    tsr_tensor_t* wrong_dtype = NULL;
    ok_status(tsr_tensor_create(TSR_DTYPE_I64, good_dims, 2, &wrong_dtype), "create i64 tensor");
    if (wrong_dtype) {
      const tsr_tensor_t* w[1] = {wrong_dtype};
      expect_error(tsr_session_run(sess, names, w, 1, NULL, 1, outs), -1, "input", "wrong input dtype");
      tsr_tensor_free(wrong_dtype);
    }
    int64_t bad_dims[2] = {4, 783};
    tsr_tensor_t* wrong_shape = NULL;
    ok_status(tsr_tensor_create(TSR_DTYPE_F32, bad_dims, 2, &wrong_shape), "create f32 tensor");
    if (wrong_shape) {
      const tsr_tensor_t* w[1] = {wrong_shape};
      expect_error(tsr_session_run(sess, names, w, 1, NULL, 1, outs), -1, "input", "wrong input shape");
      tsr_tensor_free(wrong_shape);
    }
    int64_t rank1[1] = {4 * 784};
    tsr_tensor_t* wrong_rank = NULL;
    ok_status(tsr_tensor_create(TSR_DTYPE_F32, rank1, 1, &wrong_rank), "create rank-1 tensor");
    if (wrong_rank) {
      const tsr_tensor_t* w[1] = {wrong_rank};
      expect_error(tsr_session_run(sess, names, w, 1, NULL, 1, outs), -1, "input", "wrong input rank");
      tsr_tensor_free(wrong_rank);
    }
    expect_error(tsr_session_run(sess, names, ins, 1, NULL, 2, outs), -1, NULL, "wrong output count");
  }

  /* ---- JSON descriptions ---- */
  char* js = NULL;
  if (ok_status(tsr_session_describe_json(sess, &js), "describe json")) {
    CHECK(js && js[0] == '{' && strstr(js, "Gemm") != NULL, "describe json does not look like the MLP: %.200s",
          js ? js : "(null)");
    tsr_string_free(js);
  }
  js = NULL;
  if (ok_status(tsr_session_stats_json(sess, &js), "stats json")) {
    CHECK(js && js[0] == '{' && strstr(js, "peak_memory_bytes") != NULL, "stats json: %.200s", js ? js : "(null)");
    tsr_string_free(js);
  }
  js = NULL;
  if (ok_status(tsr_devices_json(NULL, &js), "devices json")) {
    CHECK(js && strstr(js, "cpu") != NULL, "devices json lists no cpu: %.200s", js ? js : "(null)");
    tsr_string_free(js);
  }

  /* ---- a session from bytes in memory ---- */
  size_t size = 0;
  void* bytes = read_file(model_path, &size);
  CHECK(bytes != NULL && size > 0, "cannot read %s", model_path);
  if (bytes) {
    tsr_session_t* s2 = NULL;
    if (ok_status(tsr_session_create_from_bytes(bytes, size, opts, &s2), "create session from bytes") && s2) {
      free(bytes); /* the session must not depend on the caller's buffer */
      bytes = NULL;
      if (input && expected) {
        tsr_tensor_t* o2 = run_one(s2, "input", input, "run (from bytes)");
        if (o2) {
          CHECK(allclose_f32(o2, expected, 1e-3, 1e-4), "output from bytes differs from PyTorch's");
          tsr_tensor_free(o2);
        }
      }
      tsr_session_free(s2);
    }
    free(bytes);
  }

  /* ---- creation error paths ---- */
  tsr_session_t* bad = NULL;
  expect_error(tsr_session_create_from_file("/no/such/dir/model.onnx", opts, &bad), TSR_ERR_NOT_FOUND,
               "/no/such/dir/model.onnx", "missing model file");
  CHECK(bad == NULL, "a session was returned with an error");
  unsigned char garbage[512];
  unsigned int seed = 12345u;
  for (size_t i = 0; i < sizeof garbage; ++i) {
    seed = seed * 1103515245u + 12345u;
    garbage[i] = (unsigned char)(seed >> 16);
  }
  expect_error(tsr_session_create_from_bytes(garbage, sizeof garbage, opts, &bad), -1, NULL, "garbage bytes");
  CHECK(bad == NULL, "a session was returned with an error");
  expect_error(tsr_session_create_from_bytes(garbage, 0, opts, &bad), -1, NULL, "empty bytes");
  CHECK(bad == NULL, "a session was returned with an error");
  tsr_tensor_t* none = NULL;
  expect_error(tsr_tensor_load_pb("/no/such/input_0.pb", &none, NULL), -1, NULL, "missing pb file");
  CHECK(none == NULL, "a tensor was returned with an error");

  /* Options that name no usable device must fail at creation, not crash. */
  tsr_options_t* bad_opts = NULL;
  ok_status(tsr_options_create(&bad_opts), "options 2");
  if (bad_opts && tsr_options_set(bad_opts, "devices", "nosuchdevice:0") == NULL) {
    expect_error(tsr_session_create_from_file(model_path, bad_opts, &bad), -1, NULL, "unknown device");
    if (bad) tsr_session_free(bad);
  } else {
    printf("ok: unknown device rejected by tsr_options_set\n");
  }
  tsr_options_free(bad_opts);

  /* ---- a symbolic batch dim (models/mlp_dynamic, when generated) ---- */
  char* dyn_path = path_join(models, "mlp_dynamic/model.onnx");
  char* dyn_in = path_join(models, "mlp_dynamic/test_data_set_0/input_0.pb");
  char* dyn_out = path_join(models, "mlp_dynamic/test_data_set_0/output_0.pb");
  if (file_exists(dyn_path) && file_exists(dyn_in) && file_exists(dyn_out)) {
    tsr_session_t* ds = NULL;
    if (ok_status(tsr_session_create_from_file(dyn_path, NULL, &ds), "create mlp_dynamic") && ds) {
      if (ok_status(tsr_session_input_info(ds, 0, &in_name, &dtype, &rank, &dims, &dim_names), "dynamic info")) {
        CHECK(rank == 2 && dims[0] == -1 && dims[1] == 784, "dynamic input dims");
        CHECK(dim_names && dim_names[0] && strcmp(dim_names[0], "batch") == 0, "symbol '%s'",
              dim_names && dim_names[0] ? dim_names[0] : "(null)");
      }
      tsr_tensor_t* di = NULL;
      tsr_tensor_t* de = NULL;
      ok_status(tsr_tensor_load_pb(dyn_in, &di, NULL), "load dynamic input");
      ok_status(tsr_tensor_load_pb(dyn_out, &de, NULL), "load dynamic output");
      if (di && de) {
        tsr_tensor_t* o = run_one(ds, "input", di, "run mlp_dynamic");
        if (o) {
          CHECK(tsr_tensor_dims(o)[0] == tsr_tensor_dims(di)[0], "dynamic output batch");
          CHECK(allclose_f32(o, de, 1e-3, 1e-4), "dynamic output differs from PyTorch's");
          tsr_tensor_free(o);
        }
      }
      tsr_tensor_free(di);
      tsr_tensor_free(de);
      tsr_session_free(ds);
    }
  } else {
    printf("note: %s missing; symbolic-dim checks not run\n", dyn_path);
  }
  free(dyn_path); free(dyn_in); free(dyn_out);

  tsr_tensor_free(out);
  tsr_tensor_free(input);
  tsr_tensor_free(expected);
  tsr_session_free(sess);
  tsr_session_free(NULL);
  tsr_options_free(opts);
  free(mlp_dir); free(model_path); free(input_path); free(output_path);

  { extern int test_c_api_training(const char* models_dir, int* checks); g_failures += test_c_api_training(models, &g_checks); }
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
