/* Tessera public C API, for embedders.
 *
 * Errors: every fallible call returns a tsr_status_t*: NULL on success, else
 * an object the caller frees with tsr_status_free(). Its code is a tsr_code
 * (see tessera/backend.h, shared with the plugin ABI) and its message names
 * the node, the op and what is wrong. No call aborts or throws on bad input.
 *
 * Ownership: objects returned through out_ parameters belong to the caller
 * and are freed with the matching *_free function. Strings returned through
 * `char** out_...` are freed with tsr_string_free(). Borrowed pointers
 * (names, dims) stay valid as long as the object they came from.
 *
 * Threads: tsr_session_run may be called from several threads at once on one
 * session. Other calls on one object must not race with each other.
 */
#ifndef TESSERA_TESSERA_H_
#define TESSERA_TESSERA_H_

#include <stddef.h>
#include <stdint.h>

#include "tessera/backend.h" /* tsr_code, tsr_dtype */

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_API __attribute__((visibility("default")))

typedef struct tsr_status_t tsr_status_t;
typedef struct tsr_options_t tsr_options_t;
typedef struct tsr_session_t tsr_session_t;
typedef struct tsr_tensor_t tsr_tensor_t;

/* "0.1.0" */
TSR_API const char* tsr_version(void);

/* ---- status ---- */
TSR_API int32_t tsr_status_code(const tsr_status_t* status);      /* TSR_OK for NULL */
TSR_API const char* tsr_status_message(const tsr_status_t* status); /* "" for NULL */
TSR_API void tsr_status_free(tsr_status_t* status);
TSR_API void tsr_string_free(char* s);

/* ---- options ----
 * Keys (all values are strings):
 *   devices         "cpu", "cuda:0,cpu", ... priority order (default "cpu")
 *   threads         CPU threads (default: the machine's cores)
 *   opt_level       "0" | "1" | "2" (default "2")
 *   dim.<NAME>      binds a symbolic input dim, e.g. "dim.batch" = "4"
 *   max_alloc_bytes cap on any single tensor / arena allocation (default 16 GiB)
 *   strict          "1": fail when a node has no device instead of falling back
 *   dump_after      pass name: print the graph after that pass to stderr ("all" = every pass)
 *   precision       "f32" (default) | "bf16"
 *   max_alloc_bytes also takes sizes with units: "512MiB", "2GiB", "1.5GB"
 *   config          path of a deployment config (TOML, see below); "PATH" applies its
 *                   [inference] table, "PATH#training" its [training] table
 *   policy          "latency" (default) | "throughput" (throughput: threads, when
 *                   unset, are pinned to the physical core count)
 *   memory.<ROLE>   per-device memory cap, e.g. "memory.cpu" = "2GiB" (recorded for
 *                   backends; not enforced by the session yet)
 *   backend.<NAME>.<KEY>  an option passed to backend NAME ("cpu", "opencl", ...)
 *   training.<KEY>  a training setting (optimizer, lr, epochs, batch_size, loss, ...)
 *   placement.<NODE or OP TYPE>  forces that node / op type onto a device role
 *   trace           path of a Chrome trace JSON file to write
 * Unknown keys are rejected with TSR_ERR_INVALID_ARGUMENT.
 * Order matters: a later call overrides an earlier one, so set "config" first
 * and then the options that should override the file. */
TSR_API tsr_status_t* tsr_options_create(tsr_options_t** out_options);
TSR_API void tsr_options_free(tsr_options_t* options);
TSR_API tsr_status_t* tsr_options_set(tsr_options_t* options, const char* key, const char* value);
/* Applies a deployment config held in memory (TOML text, the same format as a
 * "config" file) to options: workload "inference" (NULL means "inference") or
 * "training" selects the table. Errors (TSR_ERR_INVALID_ARGUMENT) read
 * "<string>:LINE:COL: what is wrong"; on error the options are unchanged.
 * toml_text is read during the call only. */
TSR_API tsr_status_t* tsr_options_load_config_string(tsr_options_t* options, const char* toml_text,
                                                     const char* workload);
/* The effective options as a JSON object of key -> string value, with the
 * keys above ("devices", "threads", "dim.batch", "backend.cpu.x", ...): what a
 * config file and later calls resulted in. Free *out_json with tsr_string_free. */
TSR_API tsr_status_t* tsr_options_json(const tsr_options_t* options, char** out_json);

/* ---- tensors (host memory, row-major, owned by the tensor) ----
 * Every dtype takes a whole number of bytes per element: the 8-bit floats
 * (TSR_DTYPE_F8*) one byte holding the bit pattern, and the 4-bit types
 * (TSR_DTYPE_U4, I4, F4E2M1) one byte each, UNPACKED (i4 sign-extended, u4 in
 * 0..15, f4e2m1 in the low nibble); only ONNX files pack them two per byte. */
TSR_API tsr_status_t* tsr_tensor_create(int32_t dtype, const int64_t* dims, size_t rank, tsr_tensor_t** out_tensor);
/* Copies nbytes from data; nbytes must equal the tensor's size. */
TSR_API tsr_status_t* tsr_tensor_create_from_data(int32_t dtype, const int64_t* dims, size_t rank, const void* data,
                                                  size_t nbytes, tsr_tensor_t** out_tensor);
TSR_API void tsr_tensor_free(tsr_tensor_t* tensor);
TSR_API int32_t tsr_tensor_dtype(const tsr_tensor_t* tensor);
TSR_API size_t tsr_tensor_rank(const tsr_tensor_t* tensor);
TSR_API const int64_t* tsr_tensor_dims(const tsr_tensor_t* tensor);
TSR_API void* tsr_tensor_data(tsr_tensor_t* tensor);
TSR_API size_t tsr_tensor_nbytes(const tsr_tensor_t* tensor);
/* ONNX TensorProto files (the ONNX test-data layout: input_0.pb, ...). out_name may be NULL. */
TSR_API tsr_status_t* tsr_tensor_load_pb(const char* path, tsr_tensor_t** out_tensor, char** out_name);
TSR_API tsr_status_t* tsr_tensor_save_pb(const char* path, const tsr_tensor_t* tensor, const char* name);

/* ---- sessions ----
 * A session compiles a model (.onnx) or loads a compiled plan (.tplan, found
 * by its magic bytes) and runs it. options may be NULL. */
TSR_API tsr_status_t* tsr_session_create_from_file(const char* path, const tsr_options_t* options,
                                                   tsr_session_t** out_session);
TSR_API tsr_status_t* tsr_session_create_from_bytes(const void* data, size_t size, const tsr_options_t* options,
                                                    tsr_session_t** out_session);
TSR_API void tsr_session_free(tsr_session_t* session);

TSR_API size_t tsr_session_input_count(const tsr_session_t* session);
TSR_API size_t tsr_session_output_count(const tsr_session_t* session);
/* Name, dtype and dims of an input/output; a dim is -1 when symbolic, and
 * out_dim_names (may be NULL) gives its symbol ("" for known dims). */
TSR_API tsr_status_t* tsr_session_input_info(const tsr_session_t* session, size_t index, const char** out_name,
                                             int32_t* out_dtype, size_t* out_rank, const int64_t** out_dims,
                                             const char* const** out_dim_names);
TSR_API tsr_status_t* tsr_session_output_info(const tsr_session_t* session, size_t index, const char** out_name,
                                              int32_t* out_dtype, size_t* out_rank, const int64_t** out_dims,
                                              const char* const** out_dim_names);

/* Runs the model. inputs are matched by name; every model input must be
 * given. out_outputs receives num_outputs new tensors in the order of
 * output_names, or of the model's outputs when output_names is NULL (then
 * num_outputs must equal tsr_session_output_count). */
TSR_API tsr_status_t* tsr_session_run(tsr_session_t* session, const char* const* input_names,
                                      const tsr_tensor_t* const* inputs, size_t num_inputs,
                                      const char* const* output_names, size_t num_outputs,
                                      tsr_tensor_t** out_outputs);

/* A JSON description: inputs, outputs, nodes (op, shapes, device), segments,
 * memory plan (arena bytes per device, lower bound), pass statistics,
 * compile time. */
TSR_API tsr_status_t* tsr_session_describe_json(tsr_session_t* session, char** out_json);
/* Statistics of the runs so far as JSON: runs, peak device memory bytes. */
TSR_API tsr_status_t* tsr_session_stats_json(tsr_session_t* session, char** out_json);
/* Writes the compiled plan (with weights) to a .tplan file. */
TSR_API tsr_status_t* tsr_session_save_plan(tsr_session_t* session, const char* path);

/* ---- training (runtime/training_session.h) ----
 * A training session trains an ONNX forward model: its floating-point
 * initializers become parameters kept on the device across steps (with the
 * optimizer's moments and BatchNorm running statistics), a loss is appended
 * to the model's first output, and each step runs forward, backward and the
 * optimizer update. Settings come from the options' "training.<key>" entries
 * (or "config" = "PATH#training"): optimizer (sgd | adam | adamw), lr, loss
 * (cross_entropy | mse), momentum, nesterov, weight_decay, beta1, beta2,
 * epsilon, grad_clip, label_smoothing, ignore_index, seed, warmup_steps and
 * steps (warmup_steps > 0: cosine schedule over `steps`); other options
 * (devices, threads, precision "bf16", ...) apply as for tsr_session_*.
 * The labels are fed as input "labels": int64 [N] class indices for
 * cross_entropy, the output's shape and dtype for mse.
 * options may be NULL (SGD, lr 1e-3, cross_entropy). */
typedef struct tsr_training_session_t tsr_training_session_t;
TSR_API tsr_status_t* tsr_training_session_create_from_file(const char* onnx_path, const tsr_options_t* options,
                                                            tsr_training_session_t** out_session);
TSR_API void tsr_training_session_free(tsr_training_session_t* session);
/* One step on a batch: every model input and "labels", by name. out_loss
 * (may be NULL) receives the batch's loss before the update. */
TSR_API tsr_status_t* tsr_training_session_step(tsr_training_session_t* session, const char* const* names,
                                                const tsr_tensor_t* const* tensors, size_t num_tensors,
                                                double* out_loss);
/* Forward only with inference semantics (BatchNorm running statistics,
 * Dropout off) and the current parameters. "labels" is optional; out_loss
 * (may be NULL) is NaN without it. out_outputs receives num_outputs new
 * tensors, the model's first num_outputs outputs in model order (0 = none). */
TSR_API tsr_status_t* tsr_training_session_eval(tsr_training_session_t* session, const char* const* names,
                                                const tsr_tensor_t* const* tensors, size_t num_tensors,
                                                tsr_tensor_t** out_outputs, size_t num_outputs, double* out_loss);
/* Optimizer steps done so far (0 for NULL). */
TSR_API int64_t tsr_training_session_step_count(const tsr_training_session_t* session);
/* Checkpoints (safetensors: parameters, moments, running statistics, step)
 * resume bit-exactly in a session made from the same model and options. */
TSR_API tsr_status_t* tsr_training_session_save_checkpoint(tsr_training_session_t* session, const char* path);
TSR_API tsr_status_t* tsr_training_session_load_checkpoint(tsr_training_session_t* session, const char* path);
/* The model with the trained weights, as an ONNX inference model. */
TSR_API tsr_status_t* tsr_training_session_export_onnx(tsr_training_session_t* session, const char* path);

/* ---- devices ----
 * JSON: every backend found (name, version, path), its devices with their
 * properties, and for a backend that loaded but is unusable, why. options may
 * be NULL. */
TSR_API tsr_status_t* tsr_devices_json(const tsr_options_t* options, char** out_json);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TESSERA_TESSERA_H_ */
