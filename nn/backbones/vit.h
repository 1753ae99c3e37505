/* vit.h — timm Vision Transformers (DeiT, CaiT) as frozen feature extractors (CPU, f32).
 *
 * The registry (backbones.h, "every backbone, one seam") builds the two published models:
 *
 *   vg_nn_module *enc = vg_backbone_new("deit_base_distilled_patch16_384", 1,
 *                                       (const char *[]){"norm.7"}, seed);
 *   vg_nn_load_state_file(enc, "deit.safetensors", false);     // timm names; unbuilt keys ignored
 *   vg_tensor *f;
 *   vg_backbone_features(enc, x, &f);                          // (N, 768, H/16, W/16)
 *
 * Tap names: "blocks.K" = the patch tokens after block K (prefix tokens dropped) as an
 * (N, C, H/p, W/p) grid; "norm.K" = the same after the final `norm` applied to the output of
 * block K (FastFlow: norm.7 for DeiT, norm.40 for CaiT). Taps in forward order; the model is
 * built (and run) only up to the last tap's block, plus `norm` when a norm tap is requested.
 *
 * State-dict names are timm's exactly: patch_embed.proj.{weight,bias}, cls_token, dist_token
 * (distilled DeiT), pos_embed, blocks.K.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}
 * (CaiT adds blocks.K.gamma_1/gamma_2, attn.proj_l, attn.proj_w), blocks_token_only.K.{gamma_1,
 * gamma_2, norm1, attn.{q,k,v,proj}, norm2, mlp.fc1, mlp.fc2} (CaiT), norm, head, head_dist.
 * A truncated model holds cls/dist tokens, pos_embed, patch_embed, blocks 0..K and norm; a full
 * timm checkpoint loads into it with the unbuilt blocks, blocks_token_only.*, head* ignored.
 *
 * Forward (eval; dropout / DropPath are identities): patch_embed (conv k=s=patch) -> tokens
 * row-major -> DeiT: cat(cls, dist, patches) + pos_embed; CaiT: patches + pos_embed (no prefix
 * entry; cls joins only in the class-attention blocks) -> blocks -> norm. LayerNorm eps 1e-6,
 * exact (erf) GELU. When the input grid differs from pos_embed's grid, pos_embed is resampled as
 * timm's resample_abs_pos_embed (bicubic, antialias=True, align_corners=False, prefix tokens
 * kept) — as timm with dynamic_img_size=True (DeiT) / a checkpoint loaded at another img_size. */
#ifndef VG_VIT_H
#define VG_VIT_H
#include "nn/backbones/backbones.h"

typedef enum { VG_VIT_DEIT = 0, VG_VIT_CAIT = 1 } vg_vit_arch;

typedef struct {
  vg_vit_arch arch;
  int64_t embed_dim;      /* 768 */
  int depth;              /* number of `blocks` (12 DeiT-B, 48 CaiT-M48) */
  int num_heads;          /* 12 / 16 */
  double mlp_ratio;       /* 4.0; hidden = (int)(embed_dim * mlp_ratio) as timm */
  int patch;              /* 16 */
  int img_size;           /* native input size (pos_embed grid = img_size / patch) */
  int in_chans;           /* 3 */
  bool distilled;         /* DeiT: dist_token + head_dist (2 prefix tokens) */
  bool qkv_bias;          /* true for both published models */
  double init_values;     /* CaiT LayerScale init (gamma_1/2 = init_values); 1e-6 for M48 */
  int depth_token_only;   /* CaiT class-attention blocks (2) */
  int num_classes;        /* head (and head_dist) outputs; 0 = no head */
  float eps;              /* LayerNorm eps (1e-6) */
} vg_vit_config;

/* The config of a published model name ("deit_base_distilled_patch16_384", "cait_m48_448");
 * false + message for another name. */
bool vg_vit_config_of(const char *name, vg_vit_config *out);

/* Builds a model from a config (tiny test models too). ntaps/taps as in vg_backbone_new
 * ("blocks.K", "norm.K", at most 15, in forward order); ntaps == 0 builds the FULL model (every
 * block, blocks_token_only, norm, head/head_dist) for vg_vit_forward_full (vg_vit_features
 * refuses it). Frozen, eval mode. Random init as timm's (normal std .02 for Linear weights,
 * tokens and pos_embed (timm's trunc_normal bounds +-2 are never reached), biases 0, LayerNorm
 * 1/0, gammas init_values, patch_embed.proj torch's Conv2d default; Vigil's Philox, so values
 * differ from torch's; about 3 s of CPU per 100 M parameters, measured). NULL + message on
 * bad arguments. */
vg_nn_module *vg_vit_new_config(const vg_vit_config *cfg, int ntaps, const char *const *taps,
                                uint64_t seed);

/* Is m a model made by vg_vit_new_config (or the registry)? Its config (may be NULL).
 * The registry's features/channels/stride functions also accept tiny vg_vit_new_config models
 * with taps: vg_backbone_of(m) is then the published descriptor of the same arch (DeiT / CaiT). */
bool vg_vit_info(const vg_nn_module *m, vg_vit_config *cfg);
/* number of `blocks` built (blocks.0 .. blocks.n-1) */
int vg_vit_num_blocks(const vg_nn_module *m);
int vg_vit_num_prefix_tokens(const vg_nn_module *m);   /* DeiT: 1 + distilled; CaiT: 0 */

/* Features at the taps (as vg_backbone_features): out[i] is (N, C, H/p, W/p), current scope.
 * H and W must be multiples of the patch size. */
vg_status vg_vit_features(vg_nn_module *m, const vg_tensor *x, vg_tensor **out);

/* Inference speed (opt-in). Whatever the packing, a forward that records nothing for
 * autograd runs each block's Linears as one GEMM with the bias (and fc1's GELU) in its output
 * step and DeiT's attention fused (tensor.h: vg_linear_ex, vg_attention_qkv), with the values
 * of the plain forward bit for bit.
 * vg_vit_prepack packs the qkv / proj / fc1 / fc2 weights of the built blocks once into the
 * GEMM's layout (about as much memory again as those weights), held by the model until
 * vg_vit_unpack or vg_nn_free. The packs serve only inference forwards of an eval-mode model
 * (vg_nn_train(m, true) and recording forwards bypass them). Before each use a pack is
 * checked against its weight (vg_packed_weight_current: same tensor, same ISA, 64 sampled
 * values) and re-packed when that differs, so a state-dict / checkpoint load, an optimizer
 * step or vg_vit_init_philox (which also re-packs) is never silently ignored. After writing
 * only a few elements of a packed weight, call vg_vit_prepack again (it re-packs everything)
 * or vg_vit_unpack. FastFlow's ViT encoder packs itself (frozen backbone). */
vg_status vg_vit_prepack(vg_nn_module *m);
void vg_vit_unpack(vg_nn_module *m);
bool vg_vit_is_packed(const vg_nn_module *m);

/* ---- step by step (tests, FastFlow-style custom forwards); tensors in the current scope.
 * tokens: (N, T, C); T = prefix + gh*gw for DeiT, gh*gw for CaiT's `blocks`. */
vg_tensor *vg_vit_embed(vg_nn_module *m, const vg_tensor *x);            /* + pos_embed */
vg_tensor *vg_vit_block(vg_nn_module *m, int k, const vg_tensor *tokens);   /* blocks.k */
vg_tensor *vg_vit_norm(vg_nn_module *m, const vg_tensor *tokens);          /* final norm */
/* CaiT class attention: cls (N, 1, C) updated by blocks_token_only.k over cat(cls, tokens) */
vg_tensor *vg_vit_token_block(vg_nn_module *m, int k, const vg_tensor *cls, const vg_tensor *tokens);
/* drops the prefix tokens (DeiT) and reshapes to (N, C, gh, gw) */
vg_tensor *vg_vit_tokens_to_grid(vg_nn_module *m, const vg_tensor *tokens, int64_t gh, int64_t gw);
/* Full forward of a model built with ntaps == 0 (timm's forward_head(pre_logits=True) / forward
 * in eval). pre_logits (N, C): DeiT: h = norm(x), h[:, 0] (distilled: (h[:, 0] + h[:, 1]) / 2);
 * CaiT: norm(cat(cls', x))[:, 0] after the class-attention blocks. logits (N, num_classes):
 * DeiT distilled: (head(h[:, 0]) + head_dist(h[:, 1])) / 2; else head(pre_logits). Either
 * output pointer may be NULL. */
vg_status vg_vit_forward_full(vg_nn_module *m, const vg_tensor *x, vg_tensor **pre_logits,
                              vg_tensor **logits);

/* For the state-dict loaders (load.c): a checkpoint key of a part this model did not build
 * (blocks.K with K >= built blocks, blocks_token_only.*, norm.* when no norm tap, head*). */
bool vg_vit_key_unbuilt(const vg_nn_module *m, const char *key);

/* pos_embed (1, prefix + gh*gw, C) -> (1, prefix + nh*nw, C): timm resample_abs_pos_embed
 * (bicubic, antialias=True, align_corners=False; prefix rows copied). f32 CPU. */
vg_tensor *vg_vit_resample_pos_embed(const vg_tensor *pe, int num_prefix, int64_t gh, int64_t gw,
                                     int64_t nh, int64_t nw);

/* Parameter count of a config WITHOUT building it: full model (every block, token-only blocks,
 * heads) when nblocks < 0, else the truncated model with blocks 0..nblocks-1 (+ norm if with_norm).
 * Equals vg_nn_num_params of the built model (tests check both). */
int64_t vg_vit_count_params(const vg_vit_config *cfg, int nblocks, bool with_norm);

/* Test weights (tools/gen_vit_fixtures.py mirrors them with tools/philox.py): every f32 entry
 * of the state dict, index i in state-dict order, from Philox u = vg_rand(seed = base_seed + i):
 *   name ends ".weight" and 2-d or 4-d (Linear / conv)  U(-b, b), b = sqrt(3 / fan_in)
 *   attn.proj_l / attn.proj_w weight (H, H)               U(-b, b), b = sqrt(3 / H)
 *   norm weights (1-d ".weight")                          0.5 + 0.5u  (U(0.5, 1.0))
 *   biases                                                U(-0.1, 0.1)
 *   cls_token, dist_token, pos_embed                      U(-0.5, 0.5)
 *   gamma_1, gamma_2                                      U(0.5, 1.0)
 * (f32: lo + (hi - lo) * u). */
vg_status vg_vit_init_philox(vg_nn_module *m, uint64_t base_seed);
#endif
