/* (No libm: the executable does not link it.)
 * The training part of the public C API (tsr_training_session_*), from plain
 * C11. Entry point test_c_api_training(), called by test_c_api.c's main.
 * Uses models/train_mlp (scripts/gen_train_refs.py); without it the checks
 * that need it are skipped with a note. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/tessera.h"

static int t_failures = 0;
static int t_checks = 0;

#define TCHECK(cond, ...)                                            \
  do {                                                               \
    ++t_checks;                                                      \
    if (!(cond)) {                                                   \
      ++t_failures;                                                  \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                  \
      fprintf(stderr, "\n");                                         \
    }                                                                \
  } while (0)

static int t_ok(tsr_status_t* s, const char* what) {
  ++t_checks;
  if (s == NULL) return 1;
  ++t_failures;
  fprintf(stderr, "FAIL %s: code %d: %s\n", what, (int)tsr_status_code(s), tsr_status_message(s));
  tsr_status_free(s);
  return 0;
}

/* An error whose message contains `needle` (when not NULL). */
static void t_error(tsr_status_t* s, const char* needle, const char* what) {
  ++t_checks;
  if (s == NULL) {
    ++t_failures;
    fprintf(stderr, "FAIL %s: expected an error, got success\n", what);
    return;
  }
  const char* msg = tsr_status_message(s);
  if (tsr_status_code(s) == TSR_OK || !msg || !msg[0] || (needle && !strstr(msg, needle))) {
    ++t_failures;
    fprintf(stderr, "FAIL %s: message '%s' (want '%s')\n", what, msg ? msg : "(null)", needle ? needle : "");
  } else {
    printf("ok: %s -> [%d] %s\n", what, (int)tsr_status_code(s), msg);
  }
  tsr_status_free(s);
}

static tsr_training_session_t* t_create(const char* path) {
  tsr_options_t* o = NULL;
  tsr_training_session_t* ts = NULL;
  if (!t_ok(tsr_options_create(&o), "training options")) return NULL;
  t_ok(tsr_options_set(o, "training.optimizer", "sgd"), "set optimizer");
  t_ok(tsr_options_set(o, "training.lr", "0.05"), "set lr");
  t_ok(tsr_options_set(o, "training.momentum", "0.9"), "set momentum");
  t_ok(tsr_options_set(o, "training.loss", "cross_entropy"), "set loss");
  t_ok(tsr_training_session_create_from_file(path, o, &ts), "create training session");
  tsr_options_free(o);
  return ts;
}

static void t_null_arguments(void) {
  tsr_training_session_t* ts = NULL;
  t_error(tsr_training_session_create_from_file(NULL, NULL, &ts), "onnx_path", "create with NULL path");
  t_error(tsr_training_session_create_from_file("x.onnx", NULL, NULL), "out_session", "create with NULL out");
  t_error(tsr_training_session_create_from_file("/nonexistent/model.onnx", NULL, &ts), NULL, "create from a missing file");
  TCHECK(ts == NULL, "no session on error");
  t_error(tsr_training_session_step(NULL, NULL, NULL, 0, NULL), "session", "step on NULL");
  t_error(tsr_training_session_eval(NULL, NULL, NULL, 0, NULL, 0, NULL), "session", "eval on NULL");
  t_error(tsr_training_session_save_checkpoint(NULL, "x"), "session", "save on NULL");
  t_error(tsr_training_session_load_checkpoint(NULL, "x"), "session", "load on NULL");
  t_error(tsr_training_session_export_onnx(NULL, "x"), "session", "export on NULL");
  TCHECK(tsr_training_session_step_count(NULL) == 0, "step count of NULL");
  tsr_training_session_free(NULL);
}

int test_c_api_training(const char* models_dir, int* checks) {
  t_null_arguments();
  char path[4096];
  snprintf(path, sizeof path, "%s/train_mlp/model.onnx", models_dir);
  FILE* f = fopen(path, "rb");
  if (!f) {
    printf("note: %s missing (scripts/gen_train_refs.py); training session checks not run\n", path);
    *checks += t_checks;
    return t_failures;
  }
  fclose(f);

  /* A fixed batch: 8 rows of 64 features, labels 0..7. */
  const int64_t xd[2] = {8, 64}, yd[1] = {8};
  float xv[8 * 64];
  int64_t yv[8];
  float yf[8];
  for (int i = 0; i < 8 * 64; ++i) xv[i] = (float)((i * 37) % 17) / 16.0f;
  for (int i = 0; i < 8; ++i) yv[i] = i, yf[i] = (float)i;
  tsr_tensor_t *x = NULL, *y = NULL, *ybad = NULL;
  t_ok(tsr_tensor_create_from_data(TSR_DTYPE_F32, xd, 2, xv, sizeof xv, &x), "x");
  t_ok(tsr_tensor_create_from_data(TSR_DTYPE_I64, yd, 1, yv, sizeof yv, &y), "labels");
  t_ok(tsr_tensor_create_from_data(TSR_DTYPE_F32, yd, 1, yf, sizeof yf, &ybad), "f32 labels");
  const char* names[2] = {"x", "labels"};
  const tsr_tensor_t* batch[2] = {x, y};
  const tsr_tensor_t* bad_batch[2] = {x, ybad};

  tsr_training_session_t* ts = t_create(path);
  tsr_training_session_t* ts2 = t_create(path);
  if (ts && ts2) {
    double first = 0, loss = 0;
    for (int k = 0; k < 20; ++k) {
      if (!t_ok(tsr_training_session_step(ts, names, batch, 2, &loss), "step")) break;
      if (k == 0) first = loss;
    }
    TCHECK(loss < 0.5 * first, "loss %f -> %f", first, loss);
    TCHECK(tsr_training_session_step_count(ts) == 20, "step count %lld", (long long)tsr_training_session_step_count(ts));

    t_error(tsr_training_session_step(ts, names, batch, 1, NULL), "'labels'", "step without labels");
    t_error(tsr_training_session_step(ts, names, bad_batch, 2, NULL), "'labels'", "step with f32 labels");
    t_error(tsr_training_session_step(ts, names, NULL, 2, NULL), NULL, "step with NULL tensors");

    tsr_tensor_t* out = NULL;
    double eval_loss = 0;
    if (t_ok(tsr_training_session_eval(ts, names, batch, 2, &out, 1, &eval_loss), "eval")) {
      TCHECK(isfinite(eval_loss) && eval_loss < first, "eval loss %f", eval_loss);
      TCHECK(tsr_tensor_rank(out) == 2 && tsr_tensor_dims(out)[0] == 8 && tsr_tensor_dims(out)[1] == 10, "logits shape");
    }
    double nolabel = 0;
    if (t_ok(tsr_training_session_eval(ts, names, batch, 1, NULL, 0, &nolabel), "eval without labels"))
      TCHECK(isnan(nolabel), "loss without labels is NaN, got %f", nolabel);
    tsr_tensor_t* two[2] = {NULL, NULL};
    t_error(tsr_training_session_eval(ts, names, batch, 2, two, 2, NULL), "num_outputs", "eval with too many outputs");

    /* Checkpoint: the resumed session takes the same next step, bit for bit. */
    const char* ck = "/tmp/tessera_c_api_training.safetensors";
    if (t_ok(tsr_training_session_save_checkpoint(ts, ck), "save checkpoint") &&
        t_ok(tsr_training_session_load_checkpoint(ts2, ck), "load checkpoint")) {
      TCHECK(tsr_training_session_step_count(ts2) == 20, "resumed step count");
      double a = 0, b = 1;
      t_ok(tsr_training_session_step(ts, names, batch, 2, &a), "step after save");
      t_ok(tsr_training_session_step(ts2, names, batch, 2, &b), "step after load");
      TCHECK(memcmp(&a, &b, sizeof a) == 0, "resumed loss %.17g vs %.17g", b, a);
    }
    remove(ck);
    t_error(tsr_training_session_load_checkpoint(ts, "/nonexistent/ck.safetensors"), NULL, "load a missing checkpoint");

    /* Export: the ONNX model gives Eval's logits. */
    const char* onnx = "/tmp/tessera_c_api_training.onnx";
    tsr_tensor_t* ev = NULL;
    tsr_session_t* s = NULL;
    if (t_ok(tsr_training_session_export_onnx(ts, onnx), "export onnx") &&
        t_ok(tsr_training_session_eval(ts, names, batch, 1, &ev, 1, NULL), "eval before comparing") &&
        t_ok(tsr_session_create_from_file(onnx, NULL, &s), "load exported model")) {
      const char* in_name[1] = {"x"};
      const tsr_tensor_t* in[1] = {x};
      tsr_tensor_t* r = NULL;
      if (t_ok(tsr_session_run(s, in_name, in, 1, NULL, 1, &r), "run exported model")) {
        const float* p = (const float*)tsr_tensor_data(r);
        const float* q = (const float*)tsr_tensor_data(ev);
        float worst = 0;
        for (int i = 0; i < 80; ++i) {
          float d = p[i] > q[i] ? p[i] - q[i] : q[i] - p[i];
          if (d > worst) worst = d;
        }
        TCHECK(worst < 1e-5f, "exported logits differ from eval by %g", worst);
        tsr_tensor_free(r);
      }
    }
    tsr_session_free(s);
    tsr_tensor_free(ev);
    remove(onnx);
    tsr_tensor_free(out);
  }
  tsr_training_session_free(ts);
  tsr_training_session_free(ts2);
  tsr_tensor_free(x);
  tsr_tensor_free(y);
  tsr_tensor_free(ybad);
  *checks += t_checks;
  return t_failures;
}
