/* datasets.h — dataset collections (file listings, no decoding) and a threaded loader.
 *
 *   vg_dataset ds;
 *   vg_split_opts so = { .split = VG_SPLIT_TRAIN, .val_fraction = 0.1, .seed = 42 };
 *   if (vg_ds_mvtec("/data/mvtec", "bottle", &so, &ds) != VG_OK) puts(vg_last_error());
 *   for (int64_t i = 0; i < ds.n; i++) ds.samples[i].image ...
 *   vg_dataset_free(&ds);
 *
 * Split policy (explicit, never implicit):
 *   VG_SPLIT_TRAIN  the training images minus the validation part
 *   VG_SPLIT_VAL    a seeded fraction (val_fraction) of the training images — or, for
 *                   MVTec LOCO, the dataset's own validation/good folder
 *   VG_SPLIT_TEST   the test set; only returned when asked for by this name
 * The validation part is chosen by a seeded Fisher-Yates shuffle (splitmix64) of the
 * sorted training list: same seed + same files -> the same split on every machine. TRAIN
 * and VAL with the same seed and fraction are disjoint and together are the training set.
 *
 * Listings are sorted by path (strcmp), so every listing is deterministic. Paths in the
 * samples are root-joined ("<root>/bottle/test/crack/000.png"). Missing or malformed
 * folders/files fail with VG_ERR_IO / VG_ERR_FORMAT and a message naming the path and
 * the layout expected. */
#ifndef VG_DATASETS_H
#define VG_DATASETS_H
#include <stdbool.h>
#include <stdint.h>
#include "base/status.h"
#include "tensor/tensor.h"
#include "datasets/image/image.h"

typedef enum { VG_SPLIT_TRAIN = 0, VG_SPLIT_VAL = 1, VG_SPLIT_TEST = 2 } vg_ds_split;
const char *vg_split_name(vg_ds_split s);

typedef struct {
  char *path;
  /* MVTec LOCO only (has_saturation true): the defects_config.json entry whose
   * pixel_value the mask's defect pixels hold. */
  bool has_saturation;
  int pixel_value;
  double saturation_threshold;
  bool relative_saturation;   /* true: threshold is a fraction of the defect's area */
} vg_mask_ref;

typedef struct {
  char *image;          /* path */
  int label;            /* 0 normal, 1 anomalous */
  char *defect;         /* "good", "crack", "logical_anomalies/<defect>"...; ImageNet-style: class folder */
  vg_ds_split split;
  int n_masks;          /* 0 for normal images; LOCO: one per defect instance */
  vg_mask_ref *masks;
} vg_sample;

typedef struct {
  vg_sample *samples;
  int64_t n, cap;
} vg_dataset;

typedef struct {
  vg_ds_split split;        /* default (zero) = TRAIN */
  double val_fraction;   /* 0..1, part of train held out as VAL (ignored for LOCO) */
  uint64_t seed;
} vg_split_opts;         /* NULL = { TRAIN, 0, 0 } */

/* MVTec AD: <root>/<category>/{train/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png}. */
vg_status vg_ds_mvtec(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out);
/* MVTec LOCO: <root>/<category>/{train/good, validation/good,
 * test/{good,logical_anomalies,structural_anomalies}/NNN.png,
 * ground_truth/<type>/NNN/<n>.png, defects_config.json}. The config is required for the
 * test split (it carries the saturation thresholds). */
typedef struct {
  char *defect_name;
  int pixel_value;
  double saturation_threshold;
  bool relative_saturation;
} vg_loco_defect;
typedef struct { vg_loco_defect *d; int n; } vg_loco_config;
/* Parses defects_config.json (an array of objects with defect_name, pixel_value in
 * [1, 65535], saturation_threshold >= 0 — in (0, 1] when relative_saturation, a fraction of
 * the defect's area — and relative_saturation); anything else is VG_ERR_FORMAT naming the entry. */
vg_status vg_loco_config_load(const char *path, vg_loco_config *out);
void vg_loco_config_free(vg_loco_config *c);
/* Lists LOCO; for the test split each mask's saturation info comes from the config
 * entry whose pixel_value matches the mask's pixels (the mask is decoded for that, once —
 * LOCO masks are small grey PNGs; a mask with no nonzero pixel or an unknown value is an
 * error naming the file). */
vg_status vg_ds_loco(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out);
/* VisA: <root>/split_csv/1cls.csv with header object,split,label,image,mask (split
 * train|test, label normal|anomaly, paths relative to root). category NULL = all objects. */
vg_status vg_ds_visa(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out);
/* BTAD (BTech): <root>/<01|02|03>/{train/ok, test/ok, test/ko, ground_truth/ko}; images
 * .bmp or .png (01 and 03 ship .bmp, 02 .png), masks matched by file stem (.png or .bmp). */
vg_status vg_ds_btad(const char *root, const char *category, const vg_split_opts *o, vg_dataset *out);

/* Generic folders. train = normal_dir (minus VAL); test = abnormal_dir (label 1, mask
 * from mask_dir by the same file stem, optionally with a "_mask" suffix) + normal_test_dir
 * (label 0) when given. mask_dir and normal_test_dir may be NULL. */
typedef struct {
  const char *normal_dir, *abnormal_dir, *mask_dir, *normal_test_dir;
} vg_folder_spec;
vg_status vg_ds_folder(const vg_folder_spec *f, const vg_split_opts *o, vg_dataset *out);
/* ImageNet-style: every supported image under root, recursively, sorted by path; label 0,
 * defect = the relative folder ("n01440764"), split TRAIN. Each folder (device, inode) is
 * listed once: real subfolders first, then symbolic links to folders, and a link whose
 * folder is already listed (a loop, a diamond of links) is skipped with a warning naming
 * it (vg_image_warn: stderr by default). Nesting deeper than 32 folders is an error. */
vg_status vg_ds_image_folder(const char *root, vg_dataset *out);

void vg_dataset_free(vg_dataset *ds);
bool vg_is_image_name(const char *name);  /* .png .jpg .jpeg .bmp .ppm .pgm .pnm .tif .tiff, any case */
/* "<defect>/<stem>" of a sample (stem: its image's file name without folders and extension;
 * a leading dot is part of the name): the relative name its maps, overlays and report rows
 * are stored under. Truncated to cap - 1 bytes (snprintf); cap >= strlen(defect) +
 * strlen(image) + 2 always fits. */
void vg_sample_rel(const vg_sample *s, char *buf, size_t cap);

/* ---- loader ----
 * Worker threads decode and transform samples into a bounded ring of `prefetch` batch
 * slots; batches come out strictly in order. Epoch e's order is a Fisher-Yates shuffle
 * seeded by (seed, e) — identical for any worker count. Errors (a corrupt image) come
 * out of vg_loader_next as the failing status with a message naming the file; the
 * loader stays usable (next batch / next epoch / destroy) and never hangs.
 *
 * transform: decoded image -> out[c*h*w] floats (CHW). The default (NULL) is
 * torchvision's Resize((h, w)) + ToTensor on a PIL image: 8-bit images are converted
 * as Pillow's convert("RGB") / convert("L") (alpha dropped, grey replicated, RGB->L with
 * 299/587/114), resized with Pillow's antialiased BILINEAR when not h x w, and scaled
 * to [0,1]. 16-bit images are scaled by 1/65535 and resized nearest (Pillow has no
 * 16-bit bilinear path to match). vg_imagenet_transform adds ImageNet normalisation.
 * Masks: the union of the sample's masks (pixel > 0 -> 1.0), resized nearest (PIL
 * NEAREST), N x 1 x H x W; zeros for samples without masks. */
typedef vg_status (*vg_transform_fn)(const vg_image *img, float *out, int c, int h, int w, void *user);
vg_status vg_default_transform(const vg_image *img, float *out, int c, int h, int w, void *user);
vg_status vg_imagenet_transform(const vg_image *img, float *out, int c, int h, int w, void *user);

typedef struct {
  int batch_size;       /* >= 1 */
  int workers;          /* threads; < 1 = 1 */
  int prefetch;         /* batches in flight; < 1 = 2 */
  int channels, height, width;
  bool shuffle;
  uint64_t seed;
  bool drop_last;       /* drop the final short batch */
  bool load_masks;
  vg_transform_fn transform;  /* NULL = vg_default_transform */
  void *user;
  /* Truncated images (a JPEG cut before its EOI marker; see VG_IMAGE_TRUNCATED):
   * false (default) decodes them as libjpeg does (missing part grey) with one warning
   * naming the file (vg_image_warn, stderr by default); true refuses them: the batch
   * fails with VG_ERR_FORMAT naming the file (`--strict-images`). */
  bool strict_images;
  /* Custom sample streams (EfficientAD's distillation: an endless stream of its own order,
   * per-position augmentation, two views per sample). All optional.
   * sampler: position pos of epoch `epoch` reads dataset sample sampler(user, epoch, pos,
   *   &tag) instead of the (shuffled) epoch order, and hands `tag` to sample_fn. Called
   *   for the positions of an epoch in increasing order, one call at a time (under the
   *   loader's lock, on a worker thread), so it may keep state; an epoch may then be any
   *   length (vg_loader_start_stream) and visit samples any number of times.
   * sample_fn: replaces transform: writes sample_floats floats per sample (any layout). */
  int64_t (*sampler)(void *user, int epoch, int64_t pos, uint64_t *tag);
  vg_status (*sample_fn)(const vg_image *img, uint64_t tag, float *out, void *user);
  int64_t sample_floats;      /* with sample_fn: floats per sample (>= 1); else C*H*W */
} vg_loader_opts;

typedef struct vg_loader vg_loader;

/* Ownership: images/masks are heap tensors owned by the batch (vg_batch_free frees them;
 * take them and set the field to NULL to keep them). indices[i] = the dataset index of
 * row i. The dataset must outlive the loader. */
typedef struct {
  int n;                 /* rows; 0 = end of epoch */
  vg_tensor *images;     /* n x C x H x W f32 (n x sample_floats with a sample_fn) */
  vg_tensor *masks;      /* n x 1 x H x W f32 or NULL (load_masks off) */
  int64_t *indices;      /* malloc'd, n entries */
} vg_batch;

vg_status vg_loader_create(const vg_dataset *ds, const vg_loader_opts *o, vg_loader **out);
int64_t vg_loader_batches(const vg_loader *L);     /* per epoch */
/* Starts epoch `epoch` (any previous epoch is abandoned cleanly). */
vg_status vg_loader_start_epoch(vg_loader *L, int epoch);
/* With a sampler: starts epoch `epoch` of n positions (n >= 0, any length; batches of
 * batch_size, the last one short unless drop_last). */
vg_status vg_loader_start_stream(vg_loader *L, int epoch, int64_t n);
/* Next batch into heap tensors (b->n == 0 at the end of the epoch). */
vg_status vg_loader_next(vg_loader *L, vg_batch *b);
/* Same into caller buffers: images holds batch_size*C*H*W floats, masks batch_size*H*W
 * (or NULL), indices batch_size (or NULL). The caller owns them; *n = rows, 0 at end. */
vg_status vg_loader_next_into(vg_loader *L, float *images, float *masks, int64_t *indices, int *n);
void vg_batch_free(vg_batch *b);
void vg_loader_destroy(vg_loader *L);   /* joins the workers; NULL ok */
#endif
