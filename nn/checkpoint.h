/* checkpoint.h — Vigil's own checkpoints: one safetensors file holding a module's state
 * dict ("model.<name>"), optionally an optimizer's state ("optim.<name>"), and a JSON
 * config in the metadata (key "vigil.config"), written to a temp file, fsynced, renamed.
 *
 *   vg_nn_checkpoint_save("run/ckpt.safetensors", net, opt, "{\"lr\": 1e-3}");
 *   char *cfg;
 *   vg_nn_checkpoint_load("run/ckpt.safetensors", net, opt, &cfg);   // strict: names and shapes
 *   free(cfg);
 *
 * Loading is strict: a tensor the model (or optimizer) has and the file lacks, one the
 * file has and the model does not, or a shape mismatch is an error naming the tensor,
 * and nothing is half-loaded: every check runs before the first tensor is copied. */
#ifndef VG_NN_CHECKPOINT_H
#define VG_NN_CHECKPOINT_H
#include "nn/nn.h"

vg_status vg_nn_checkpoint_save(const char *path, const vg_nn_module *m, vg_optim *o, const char *config_json);
/* As vg_nn_checkpoint_save, plus a run state (JSON text, e.g. the training driver's
 * {"step": .., "fit_begin": .., "fit_end": ..}) stored in the metadata under
 * "vigil.run_state", so one rename commits the tensors and the state together.
 * run_state NULL = none. Read it back with vg_st_meta(f, VG_CHECKPOINT_RUN_STATE). */
#define VG_CHECKPOINT_RUN_STATE "vigil.run_state"
vg_status vg_nn_checkpoint_save_state(const char *path, const vg_nn_module *m, vg_optim *o, const char *config_json,
                                      const char *run_state);
/* o may be NULL (the file's optimizer entries are then ignored); config_out may be NULL,
 * else *config_out is a malloc'd copy of the stored config ("" when none). */
vg_status vg_nn_checkpoint_load(const char *path, vg_nn_module *m, vg_optim *o, char **config_out);
#endif
