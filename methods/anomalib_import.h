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
 *   fastflow     backbone (norms.0.weight: 64 channels resnet18, 256 wide_resnet50_2),
 *                input_size (4 x its spatial size), flow_steps (module_list entries),
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

vg_status vg_anomalib_config(const char *model, const char *ckpt, const vg_json *user, vg_json **out, char *note,
                             size_t note_cap);
#endif
