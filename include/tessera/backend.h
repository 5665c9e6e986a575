/* Tessera backend plugin ABI (plain C, versioned).
 *
 * A backend is a shared library that exports one symbol:
 *
 *     const tsr_backend_api* tsr_backend_entry(uint32_t host_abi_version);
 *
 * It returns a static table of function pointers that starts with
 * `struct_size` and `abi_version`. The host rejects a table whose
 * abi_version's major part differs from its own, and reads only the slots
 * that fit in `struct_size` (so new slots can be appended in minor versions).
 *
 * Object layers: backend -> device -> (buffer, stream, event, executable).
 * All objects are opaque to the host. Every call that can fail returns a
 * tsr_code and, on failure, writes a message into `err` (when err != NULL).
 * No C++ exception and no abort() may cross this boundary.
 *
 * Optional slots may be NULL; the host then supplies the default described at
 * the slot. Thread safety: `execute` on one executable may be called from
 * several threads at once with different bindings and streams; every other
 * call on one object is serialized by the host.
 *
 * Graphs cross the boundary as read-only views (tsr_graph_view) that the host
 * owns; a view and everything it points to is valid only for the duration of
 * the call it is passed to, except constant data (tsr_value_view.const_data),
 * which stays valid until the executable compiled from it is destroyed.
 */
#ifndef TESSERA_BACKEND_H_
#define TESSERA_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Major in the high 16 bits, minor in the low 16 bits. */
#define TSR_BACKEND_ABI_VERSION ((1u << 16) | 1u)
#define TSR_BACKEND_ABI_MAJOR(v) ((v) >> 16)

#if defined(_WIN32)
#define TSR_BACKEND_EXPORT __declspec(dllexport)
#else
#define TSR_BACKEND_EXPORT __attribute__((visibility("default")))
#endif

/* ---- status --------------------------------------------------------------- */

/* Codes shared with the public C API (tessera.h). */
typedef enum tsr_code {
  TSR_OK = 0,
  TSR_ERR_INVALID_ARGUMENT = 1,
  TSR_ERR_NOT_FOUND = 2,
  TSR_ERR_UNSUPPORTED = 3,
  TSR_ERR_OUT_OF_RANGE = 4,
  TSR_ERR_OUT_OF_MEMORY = 5,
  TSR_ERR_FAILED_PRECONDITION = 6,
  TSR_ERR_INTERNAL = 7,
  TSR_ERR_NO_DEVICE = 8,
  TSR_ERR_IO = 9
} tsr_code;

#define TSR_ERROR_MESSAGE_CAPACITY 1024

/* Filled by the backend on failure. `message` is NUL-terminated. */
typedef struct tsr_error {
  int32_t code;
  char message[TSR_ERROR_MESSAGE_CAPACITY];
} tsr_error;

/* ---- types ------------------------------------------------------------------ */

/* Element types; numbering follows ONNX TensorProto.DataType. */
typedef enum tsr_dtype {
  TSR_DTYPE_UNDEFINED = 0,
  TSR_DTYPE_F32 = 1,
  TSR_DTYPE_U8 = 2,
  TSR_DTYPE_I8 = 3,
  TSR_DTYPE_U16 = 4,
  TSR_DTYPE_I16 = 5,
  TSR_DTYPE_I32 = 6,
  TSR_DTYPE_I64 = 7,
  TSR_DTYPE_STRING = 8,
  TSR_DTYPE_BOOL = 9,
  TSR_DTYPE_F16 = 10,
  TSR_DTYPE_F64 = 11,
  TSR_DTYPE_U32 = 12,
  TSR_DTYPE_U64 = 13,
  TSR_DTYPE_BF16 = 16,
  /* One byte per element (see graph/dtype.h): float8 bit patterns, and the
   * sub-byte types UNPACKED (i4 sign-extended int8, u4 in [0,15], f4e2m1 in
   * the low nibble). */
  TSR_DTYPE_F8E4M3FN = 17,
  TSR_DTYPE_F8E4M3FNUZ = 18,
  TSR_DTYPE_F8E5M2 = 19,
  TSR_DTYPE_F8E5M2FNUZ = 20,
  TSR_DTYPE_U4 = 21,
  TSR_DTYPE_I4 = 22,
  TSR_DTYPE_F4E2M1 = 23,
  TSR_DTYPE_F8E8M0 = 24
} tsr_dtype;

/* Attribute kinds; numbering follows ONNX AttributeProto.AttributeType. */
typedef enum tsr_attr_type {
  TSR_ATTR_UNDEFINED = 0,
  TSR_ATTR_FLOAT = 1,
  TSR_ATTR_INT = 2,
  TSR_ATTR_STRING = 3,
  TSR_ATTR_TENSOR = 4,
  TSR_ATTR_GRAPH = 5,
  TSR_ATTR_FLOATS = 6,
  TSR_ATTR_INTS = 7,
  TSR_ATTR_STRINGS = 8
} tsr_attr_type;

/* ---- graph views -------------------------------------------------------------- */

struct tsr_graph_view;

typedef struct tsr_tensor_view {
  int32_t dtype;          /* tsr_dtype */
  int32_t rank;
  const int64_t* dims;    /* rank entries */
  const void* data;       /* host memory, row-major */
  uint64_t nbytes;
} tsr_tensor_view;

typedef struct tsr_attr_view {
  const char* name;
  int32_t type;                     /* tsr_attr_type */
  int64_t i;                        /* TSR_ATTR_INT */
  float f;                          /* TSR_ATTR_FLOAT */
  const char* s;                    /* TSR_ATTR_STRING (not necessarily NUL-free) */
  uint64_t s_len;
  uint64_t count;                   /* element count of ints/floats/strings */
  const int64_t* ints;              /* TSR_ATTR_INTS */
  const float* floats;              /* TSR_ATTR_FLOATS */
  const char* const* strings;       /* TSR_ATTR_STRINGS, NUL-terminated */
  const tsr_tensor_view* tensor;    /* TSR_ATTR_TENSOR */
  const struct tsr_graph_view* graph; /* TSR_ATTR_GRAPH (control-flow bodies) */
} tsr_attr_view;

/* Value flags. */
#define TSR_VALUE_CONSTANT 1u       /* const_data holds the tensor */
#define TSR_VALUE_GRAPH_INPUT 2u    /* fed from outside the view */
#define TSR_VALUE_GRAPH_OUTPUT 4u   /* read outside the view */

typedef struct tsr_value_view {
  const char* name;
  int32_t dtype;          /* tsr_dtype */
  int32_t rank;           /* -1 when unknown (claim only; compile sees static shapes) */
  const int64_t* dims;    /* a dim is -1 when symbolic/unknown (claim only) */
  const void* const_data; /* constants: host data, valid until the executable is destroyed */
  uint64_t const_bytes;
  uint32_t flags;         /* TSR_VALUE_* */
} tsr_value_view;

typedef struct tsr_node_view {
  const char* name;
  const char* domain;     /* "" for ai.onnx, "tessera" for Tessera's ops */
  const char* op_type;
  int64_t opset;          /* the model's opset for this domain */
  uint32_t num_inputs;
  const int32_t* inputs;  /* value indices; -1 = omitted optional input */
  uint32_t num_outputs;
  const int32_t* outputs; /* value indices; -1 = unused optional output */
  uint32_t num_attrs;
  const tsr_attr_view* attrs;
} tsr_node_view;

typedef struct tsr_graph_view {
  uint32_t struct_size;
  uint32_t num_values;
  const tsr_value_view* values;
  uint32_t num_nodes;
  const tsr_node_view* nodes;     /* in a topological order */
  uint32_t num_inputs;
  const int32_t* inputs;          /* value indices fed from outside */
  uint32_t num_outputs;
  const int32_t* outputs;         /* value indices read outside */
} tsr_graph_view;

/* ---- devices ------------------------------------------------------------------ */

#define TSR_DEVICE_HOST_VISIBLE 1u   /* buffer memory is host-addressable (buffer_host_ptr works) */

typedef struct tsr_device_props {
  uint32_t struct_size;
  char name[128];            /* "Intel(R) Xeon(R) ...", "NVIDIA H100 80GB HBM3" */
  char kind[16];             /* "cpu", "gpu", "accelerator" */
  uint64_t memory_bytes;     /* 0 when unknown */
  int32_t compute_units;     /* cores, SMs, CUs */
  uint32_t flags;            /* TSR_DEVICE_* */
  double peak_gflops_f32;    /* for the partitioner's cost model; 0 = unknown */
  double memory_gbps;        /* 0 = unknown */
} tsr_device_props;

/* Per-node answer of `claim`. */
typedef struct tsr_claim {
  int32_t supported;         /* 1 when the device can run the node */
  double est_time_us;        /* estimated run time when supported; 0 = unknown */
  char reason[160];          /* why not (or a note); NUL-terminated */
} tsr_claim;

/* A key/value option ("threads" = "2", "precision" = "bf16"). */
typedef struct tsr_option {
  const char* key;
  const char* value;
} tsr_option;

typedef struct tsr_compile_options {
  uint32_t struct_size;
  uint32_t num_options;
  const tsr_option* options;
} tsr_compile_options;

/* Where a value of a segment lives at execute time: a buffer and a byte
 * offset into it. One binding per value of the compiled view, by value index;
 * constants have buffer == NULL. */
typedef struct tsr_backend_t tsr_backend_t;
typedef struct tsr_device_t tsr_device_t;
typedef struct tsr_buffer_t tsr_buffer_t;
typedef struct tsr_stream_t tsr_stream_t;
typedef struct tsr_event_t tsr_event_t;
typedef struct tsr_executable_t tsr_executable_t;

typedef struct tsr_binding {
  tsr_buffer_t* buffer;
  uint64_t offset;
} tsr_binding;

/* A device's preferred layout for one value (see `choose_layouts`). */
typedef struct tsr_layout_choice {
  char layout[32];  /* "" = plain row-major */
  uint64_t bytes;   /* buffer bytes in that layout; 0 = the plain size */
} tsr_layout_choice;

typedef struct tsr_backend_api {
  uint32_t struct_size;
  uint32_t abi_version;            /* TSR_BACKEND_ABI_VERSION the plugin was built with */
  const char* name;                /* "cpu", "cuda", "opencl", ... */
  const char* version;             /* the plugin's own version string */

  /* Backend lifetime. `options` may be NULL. A backend whose hardware or
   * driver is absent still initializes and reports 0 devices from
   * device_count with the reason in `err` and code TSR_ERR_NO_DEVICE. */
  int32_t (*init)(const tsr_compile_options* options, tsr_backend_t** out_backend, tsr_error* err);
  void (*shutdown)(tsr_backend_t* backend);

  int32_t (*device_count)(tsr_backend_t* backend, int32_t* out_count, tsr_error* err);
  int32_t (*device_props)(tsr_backend_t* backend, int32_t index, tsr_device_props* out_props, tsr_error* err);
  int32_t (*device_open)(tsr_backend_t* backend, int32_t index, tsr_device_t** out_device, tsr_error* err);
  void (*device_close)(tsr_device_t* device);

  /* Capability: fills out_claims[i] for each node i of `graph`. */
  int32_t (*claim)(tsr_device_t* device, const tsr_graph_view* graph, tsr_claim* out_claims, tsr_error* err);

  /* Turns a segment (static shapes) into an executable. `options` may be NULL. */
  int32_t (*compile)(tsr_device_t* device, const tsr_graph_view* segment, const tsr_compile_options* options,
                     tsr_executable_t** out_executable, tsr_error* err);
  void (*executable_destroy)(tsr_executable_t* executable);
  /* Bytes of device scratch the executable wants per execute (host passes it
   * as the binding at index num_values of the view). Optional: NULL = 0. */
  int32_t (*executable_scratch_bytes)(tsr_executable_t* executable, uint64_t* out_bytes, tsr_error* err);

  /* Enqueues the executable on `stream`. `bindings` has one entry per value
   * of the compiled view (num_values), plus one for scratch if requested.
   * In-place: for the ai.onnx elementwise ops Relu LeakyRelu Sigmoid Tanh Exp
   * Neg Abs Sqrt Erf Gelu Clip Add Sub Mul Div and tessera.Gelu and
   * tessera.FusedElementwise, the host may bind the output
   * to the same memory as one input of identical dtype and shape (an input
   * that is dead after the node); kernels for these ops must allow it.
   * tessera.FusedConv with has_residual=1 may likewise get Y bound to the
   * memory of its residual Z (input 3; same dtype, shape and non-plain layout,
   * Z dead after the node): it must read each element of Z before writing it. */
  int32_t (*execute)(tsr_executable_t* executable, tsr_stream_t* stream, const tsr_binding* bindings,
                     uint32_t num_bindings, tsr_error* err);

  /* Memory. */
  int32_t (*buffer_alloc)(tsr_device_t* device, uint64_t bytes, uint64_t alignment, tsr_buffer_t** out_buffer,
                          tsr_error* err);
  void (*buffer_free)(tsr_buffer_t* buffer);
  /* Optional: host address of a host-visible buffer, else NULL. */
  void* (*buffer_host_ptr)(tsr_buffer_t* buffer);
  /* Host <-> device copies, ordered on `stream` with its other work.
   * copy_h2d reads `src` during the call: the caller may reuse or free `src`
   * as soon as it returns (a backend stages through its own memory or blocks).
   * The host therefore makes sure `src` holds its data BEFORE calling (e.g. it
   * waits for the event of a d2h that filled it).
   * copy_d2h may complete asynchronously: `dst` holds the data only after the
   * stream is synchronized, or an event recorded after the copy has completed;
   * `dst` must stay valid until then. */
  int32_t (*copy_h2d)(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, const void* src,
                      uint64_t bytes, tsr_error* err);
  int32_t (*copy_d2h)(tsr_stream_t* stream, void* dst, tsr_buffer_t* src, uint64_t src_offset, uint64_t bytes,
                      tsr_error* err);
  /* Optional: same-device copy. NULL = host stages through copy_d2h/copy_h2d. */
  int32_t (*copy_d2d)(tsr_stream_t* stream, tsr_buffer_t* dst, uint64_t dst_offset, tsr_buffer_t* src,
                      uint64_t src_offset, uint64_t bytes, tsr_error* err);

  /* Streams: in-order queues. */
  int32_t (*stream_create)(tsr_device_t* device, tsr_stream_t** out_stream, tsr_error* err);
  void (*stream_destroy)(tsr_stream_t* stream);
  int32_t (*stream_synchronize)(tsr_stream_t* stream, tsr_error* err);

  /* Events. Optional as a group: NULL = the host synchronizes streams instead. */
  int32_t (*event_create)(tsr_device_t* device, tsr_event_t** out_event, tsr_error* err);
  void (*event_destroy)(tsr_event_t* event);
  int32_t (*event_record)(tsr_event_t* event, tsr_stream_t* stream, tsr_error* err);
  int32_t (*stream_wait_event)(tsr_stream_t* stream, tsr_event_t* event, tsr_error* err);
  int32_t (*event_synchronize)(tsr_event_t* event, tsr_error* err);

  /* ---- event timing (tracing; appended, optional) ----------------------------
   * Device time in microseconds between two recorded events of ONE device:
   * the moment the work enqueued before `end` completed minus the moment the
   * work enqueued before `start` completed, by the device's own clock. Both
   * events must have been recorded and be complete (the host calls it only
   * after event_synchronize or stream_synchronize covers them); the result may
   * be negative when `end` completed first (events on different streams).
   * Optional: NULL (or a table too small to hold it) = the host times segments
   * with its own clock at enqueue and completion. */
  int32_t (*event_elapsed_us)(tsr_event_t* start, tsr_event_t* end, double* out_us, tsr_error* err);

  /* ---- layout negotiation (appended, optional) -------------------------------
   * Which memory layout the device would like each value of a segment in.
   * The host calls it after partitioning, once per segment (static shapes),
   * then decides (compiler/assign_layouts.h): a value produced in the segment
   * gets its producer's preferred layout when every reader accepts it; when
   * only some readers do, the host inserts ONE tessera.LayoutConvert node
   * (attributes `from`, `to`) that makes the plain copy for the others.
   * Segment inputs/outputs, graph inputs/outputs and constants always stay
   * plain (row-major). The chosen layouts reach `compile` as node attributes:
   * `_tsr_in_layouts` / `_tsr_out_layouts` (strings, one per input / output,
   * "" = plain) on every node that reads / writes a non-plain value.
   *   out_values[v]: per value of the view: `layout` = the layout its producer
   *     would like to write ("" = plain; a backend-defined name such as
   *     "nhwc" or "nChw16c", NUL-terminated), `bytes` = buffer bytes the value
   *     needs in that layout (>= the plain size; blocked formats pad). The host
   *     zero-fills the array before the call.
   *   out_accepts[k]: one entry per node input, nodes in view order and
   *     inputs in node order (sum of num_inputs entries): 1 when the node can
   *     read that input in its value's preferred layout.
   * Optional: NULL (or a table too small to hold it) = every value plain. */
  int32_t (*choose_layouts)(tsr_device_t* device, const tsr_graph_view* segment, struct tsr_layout_choice* out_values,
                            uint8_t* out_accepts, tsr_error* err);

  /* ---- compiled artifacts (cached compilation in .tplan files; appended, optional) ----
   * executable_serialize: bytes from which `compile_cached` can rebuild this
   * executable with less work than `compile` (their content is the backend's
   * business, e.g. weights already packed into the layouts its kernels chose).
   * *out_data is owned by the executable and stays valid until the executable
   * is destroyed or serialized again; *out_bytes = 0 means nothing worth
   * caching. The host stores the bytes keyed by (backend name, backend
   * version, device name, segment) and hands them back only when all match.
   * Optional: NULL = the backend makes no artifacts. */
  int32_t (*executable_serialize)(tsr_executable_t* executable, const void** out_data, uint64_t* out_bytes,
                                  tsr_error* err);
  /* compile_cached: same contract as `compile`, given an artifact made by
   * executable_serialize for this segment. Returns
   * TSR_ERR_FAILED_PRECONDITION when the artifact does not fit (the host then
   * calls `compile` and reports the message as the reason); any other error
   * is a compile error. A corrupt artifact must be detected and reported, never
   * trusted. Optional: NULL = the host calls `compile` (artifacts ignored). */
  int32_t (*compile_cached)(tsr_device_t* device, const tsr_graph_view* segment, const tsr_compile_options* options,
                            const void* artifact, uint64_t artifact_bytes, tsr_executable_t** out_executable,
                            tsr_error* err);
} tsr_backend_api;

typedef const tsr_backend_api* (*tsr_backend_entry_fn)(uint32_t host_abi_version);

#define TSR_BACKEND_ENTRY_SYMBOL "tsr_backend_entry"

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* TESSERA_BACKEND_H_ */
