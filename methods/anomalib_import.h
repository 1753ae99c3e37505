/* anomalib_import.h — the method config that runs an anomalib 2.x checkpoint as anomalib does
 * (`vigil predict --from-anomalib`).
 *
 *   vg_json *cfg;
 *   char note[512];
 *   if (vg_anomalib_config("fastflow", "model.ckpt", user_cfg, &cfg, note, sizeof note) != VG_OK)
 *     puts(vg_last_error());        // e.g. "... implies conv3x3_only=false ..."
 *   vg_method_create("fastflow", cfg, &m); vg_fastflow_load_anomalib(m, "model.ckpt");
 *
 * Structural options are read off the checkpoint's tensor names and shapes (after the
 * "state_dict." and "model." prefixes):
 *   fastflow     backbone (norms.0.weight: 64 channels resnet18, 256 wide_resnet50_2; no norms:
 *                feature_extractor.dist_token present deit_base_distilled_patch16_384, else
 *                cait_m48_448), input_size (4 x the norms' spatial size; transformers: patch x
 *                the side of feature_extractor.pos_embed's grid), flow_steps (module_list entries),
 *                hidden_ratio (subnet.0.weight: hidden / ceil(C/2), the smallest ratio that
 *                gives every scale's hidden width), conv3x3_only (the kernel of step 1's
 *                subnet: 1x1 = false, anomalib's default; 3x3 = true)
 *   cflow        backbone (encoder weights when present, else the decoders' channels),
 *                layers (each decoder's channels), coupling_blocks, condition_vector
 *                (subnet.0.weight's input minus ceil(C/2))
 *   efficientad  model (teacher.conv5 present: m, else s), out_channels (the teacher's last conv)
 * A key the user did not give is filled in; one the user gave that contradicts the
 * checkpoint is an error naming the option, the value the checkpoint implies and the tensor
 * that says so. Options no tensor determines keep their defaults (anomalib's: clamp
 * 1.9 / 2.0, EfficientAD padding false, CFLOW / EfficientAD input_size 256).
 * Preprocessing: "resize": "float" (anomalib 2.x's read_image + Resize(antialias=True) on the
 * float image) unless the user set "resize". *out: the user's keys, then the inferred ones,
 * then resize (a new object, vg_json_free it). note (may be NULL): "key=value, ..." of what
 * was inferred. */
#ifndef VG_METHODS_ANOMALIB_IMPORT_H
#define VG_METHODS_ANOMALIB_IMPORT_H
#include <stddef.h>
#include "base/json.h"
#include "base/status.h"
#include "nn/pth.h"

/* Runs the method's anomalib_infer (its vg_method_def; methods/method.h) on ckpt's tensors. */
vg_status vg_anomalib_config(const char *model, const char *ckpt, const vg_json *user, vg_json **out, char *note,
                             size_t note_cap);

/* For a method's anomalib_infer: the checkpoint's tensors d, the user's options, and the keys
 * inferred so far (vg_anomalib_put). nr / in / hid: scratch for the method's checks. */
#define VG_ANOMALIB_MAX_KEYS 8
typedef struct vg_anomalib_infer {
  const vg_pth_dict *d;
  const char *model;
  const vg_json *user;
  int n;
  char key[VG_ANOMALIB_MAX_KEYS][32];
  char json[VG_ANOMALIB_MAX_KEYS][256];   /* the inferred value as JSON text */
  int nr;                                 /* FastFlow scales: subnet input / hidden widths */
  int64_t in[8], hid[8];
} vg_anomalib_infer;
/* The tensor named `fmt` after the state_dict. / model. prefixes; NULL if absent. */
const vg_tensor *vg_anomalib_tensor(const vg_pth_dict *d, const char *fmt, ...);
int64_t vg_anomalib_dim(const vg_tensor *t, int i);   /* -1 when t is NULL or has fewer dims */
/* Does the user's value u agree with the inferred JSON text? */
typedef bool (*vg_anomalib_same)(const vg_anomalib_infer *f, const vg_json *u, const char *json);
bool vg_anomalib_same_ci_string(const vg_anomalib_infer *f, const vg_json *u, const char *json);
bool vg_anomalib_same_int(const vg_anomalib_infer *f, const vg_json *u, const char *json);
bool vg_anomalib_same_bool(const vg_anomalib_infer *f, const vg_json *u, const char *json);
/* Records key = json (what the checkpoint implies), or, when the user gave the key, checks
 * it with `same` (NULL = JSON text equality): a mismatch is VG_ERR_ARG naming the key, the
 * implied value and why (the evidence). */
vg_status vg_anomalib_put(vg_anomalib_infer *f, const char *key, const char *json, vg_anomalib_same same,
                          const char *why);
#endif
