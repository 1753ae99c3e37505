/* stfpm.h — STFPM (Wang et al. 2021, Student-Teacher Feature Pyramid Matching) as
 * anomalib 2.7's STFPMModel + STFPMLoss + its Lightning optimizer, on the method contract
 * (methods/method.h).
 *
 *   vg_method *m;
 *   vg_stfpm_new(cfg_json, &m);                     // or vg_method_create("stfpm", cfg, &m)
 *   m->ops->train_step(m, images, step, &loss);     // one SGD step of the student
 *   m->ops->predict(m, images, maps, scores);       // maps >= 0, score = max of the map
 *   vg_method_free(m);
 *
 * Model: a teacher ResNet (resnet18 | wide_resnet50_2, layer1..3; pretrained weights via
 * "weights", random on the synthetic default), frozen and always in eval mode, and a student
 * of the same architecture trained from scratch with timm's init (convs kaiming_normal
 * fan_out/relu, BN 1/0, zero_init_last: every residual block's last BN weight = 0); the
 * student's BNs use batch statistics in training (running statistics updated, momentum 0.1)
 * and running statistics at inference. With t^ = t / max(|t|_2, 1e-12) over channels (and s^):
 *   loss = sum_layers 0.5 / (h w) * sum_{b,c,h,w} (t^ - s^)^2        (not divided by the batch)
 *   map  = prod_layers upsample_bilinear(align_corners=False)(0.5 sum_c (t^ - s^)^2)
 *   score = max of the map.
 * Optimizer: SGD(student, lr 0.4, momentum 0.9, dampening 0, weight_decay 1e-3), no schedule.
 * State-dict names are anomalib's: teacher_model.feature_extractor.*,
 * student_model.feature_extractor.* (timm's resnet names = torchvision's), + "vigil_step"
 * in Vigil checkpoints (which also hold the SGD momentum buffers).
 *
 * Config keys: the table STFPM_CONFIG in stfpm.c (`vigil train stfpm --help`). */
#ifndef VG_METHODS_STFPM_H
#define VG_METHODS_STFPM_H
#include "methods/method.h"
#include "nn/nn.h"

#define VG_STFPM_LAYERS 3

vg_status vg_stfpm_new(const vg_json *cfg, vg_method **out);
vg_nn_module *vg_stfpm_module(vg_method *m);          /* teacher_model + student_model */
vg_nn_module *vg_stfpm_teacher(vg_method *m);         /* the teacher's ResNet */
vg_nn_module *vg_stfpm_student(vg_method *m);         /* the student's ResNet */
/* Teacher (no grad) and student features of x (N x 3 x S x S) in the current scope, the
 * student in its current mode (vg_nn_train). t[VG_STFPM_LAYERS], s[VG_STFPM_LAYERS]. */
vg_status vg_stfpm_features(vg_method *m, const vg_tensor *x, vg_tensor **t, vg_tensor **s);
/* 0.5 sum_c (t^ - s^)^2: N x 1 x h x w */
vg_tensor *vg_stfpm_layer_map(const vg_tensor *t, const vg_tensor *s);
vg_tensor *vg_stfpm_loss(int n, vg_tensor *const *t, vg_tensor *const *s);
vg_tensor *vg_stfpm_anomaly_map(int n, vg_tensor *const *t, vg_tensor *const *s, int64_t h, int64_t w);
#endif
