/* registry.c — method name -> constructor (methods/method.h). A new method adds one row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "nn/checkpoint.h"
#include "methods/method.h"
#include "methods/baseline/baseline.h"
#include "methods/fastflow/fastflow.h"
#include "methods/cflow/cflow.h"
#include "methods/efficientad/efficientad.h"

typedef struct {
  const char *name;
  vg_method_ctor ctor;
  vg_method_quick quick;   /* the synthetic-default CPU schedule (steps 0 = none) */
} vg_method_entry;

/* Constructors are declared in each method's header; listed here by name. */
static const vg_method_entry vg_methods[] = {
  { "meanimage", vg_meanimage_new, {0, 0, NULL} },
  { "fastflow", vg_fastflow_new, {12, 8, NULL} },
  /* resnet18: building WRN50's soft permutations (SO(2048) rotations) alone takes minutes */
  { "cflow", vg_cflow_new, {8, 16, "resnet18"} },
  { "efficientad", vg_efficientad_new, {40, 1, NULL} },
  { NULL, NULL, {0, 0, NULL} }
};

const char *const *vg_method_names(void) {
  static const char *names[sizeof vg_methods / sizeof vg_methods[0]];
  size_t i = 0;
  for (; vg_methods[i].name; i++) names[i] = vg_methods[i].name;
  names[i] = NULL;
  return names;
}

vg_status vg_method_create(const char *name, const vg_json *cfg, vg_method **out) {
  *out = NULL;
  for (size_t i = 0; vg_methods[i].name; i++)
    if (!strcmp(vg_methods[i].name, name)) return vg_methods[i].ctor(cfg, out);
  return vg_fail(VG_ERR_ARG, "unknown method '%s' (known: see vigil --help)", name ? name : "(null)");
}

bool vg_method_quick_schedule(const char *name, vg_method_quick *out) {
  for (size_t i = 0; vg_methods[i].name; i++)
    if (!strcmp(vg_methods[i].name, name) && vg_methods[i].quick.steps > 0) {
      *out = vg_methods[i].quick;
      return true;
    }
  return false;
}

void vg_method_free(vg_method *m) {
  if (m && m->ops && m->ops->free) m->ops->free(m);
}

vg_status vg_method_checkpoint_save(const vg_method *m, const vg_nn_module *net, vg_optim *opt, const char *path) {
  char *cfg = m->ops->config_json(m);
  vg_status st = vg_nn_checkpoint_save_state(path, net, opt, cfg ? cfg : "{}", m->run_state);
  free(cfg);
  return st;
}

vg_status vg_method_to(vg_method *m, vg_device dev, vg_dtype dt) {
  const char *name = m->ops->name;
  if (dt != VG_F32 && dt != VG_F16) return vg_fail(VG_ERR_ARG, "%s: dtype %s is not supported (f32 or f16)", name, vg_dtype_name(dt));
  if (dt == VG_F16 && dev == VG_CPU)
    return vg_fail(VG_ERR_ARG, "%s: f16 computes on the GPU only (--device cuda), the CPU computes in f32", name);
  if (dev == m->device && dt == m->dtype) return VG_OK;
  if (dev != VG_CPU && !vg_cuda_available()) return vg_fail_prefix("%s: --device cuda", name);
  if (!m->ops->to)
    return vg_fail(VG_ERR_ARG, "%s: this method runs on the CPU in f32 only (no device support)", name);
  vg_status st = m->ops->to(m, dev, dt);
  if (st != VG_OK) return vg_fail_prefix("%s: moving to %s/%s", name, dev == VG_CPU ? "cpu" : "cuda", vg_dtype_name(dt));
  m->device = dev;
  m->dtype = dt;
  return VG_OK;
}

const vg_tensor *vg_method_input(const vg_method *m, const vg_tensor *x) {
  if (!x) return NULL;
  if (x->device != m->device) x = vg_to_device(x, m->device);
  if (x && x->dtype != m->dtype) x = vg_cast(x, m->dtype);
  return x;
}

bool vg_parse_device(const char *s, vg_device *dev) {
  if (!s || !strcmp(s, "cpu")) *dev = VG_CPU;
  else if (!strcmp(s, "cuda") || !strcmp(s, "gpu")) *dev = VG_CUDA;
  else {
    vg_fail(VG_ERR_ARG, "unknown device '%s' (cpu or cuda)", s);
    return false;
  }
  return true;
}

bool vg_parse_dtype(const char *s, vg_dtype *dt) {
  if (!s || !strcmp(s, "f32") || !strcmp(s, "float32") || !strcmp(s, "fp32")) *dt = VG_F32;
  else if (!strcmp(s, "f16") || !strcmp(s, "float16") || !strcmp(s, "fp16") || !strcmp(s, "half")) *dt = VG_F16;
  else {
    vg_fail(VG_ERR_ARG, "unknown dtype '%s' (f32 or f16)", s);
    return false;
  }
  return true;
}

vg_status vg_method_maps_out(const vg_tensor *map, float *maps, float *scores) {
  if (!map) return vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_ARG, "predict: no map");
  vg_status st = vg_to_host(map, VG_F32, maps);   /* any device / dtype */
  int64_t n = map->shape[0], P = vg_numel(map) / (n ? n : 1);
  for (int64_t r = 0; st == VG_OK && r < n; r++) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < P; i++) mx = maps[r * P + i] > mx ? maps[r * P + i] : mx;
    scores[r] = mx;
  }
  return st;
}

vg_status vg_method_move(vg_nn_module *net, vg_optim *opt, int nhost, vg_tensor *const *host, vg_device dev,
                         vg_dtype dt) {
  vg_status st = vg_nn_to(net, dev, dt);
  for (int i = 0; i < nhost && st == VG_OK; i++) st = vg_tensor_to_(host[i], VG_CPU, host[i]->dtype);
  if (st == VG_OK && opt && dt == VG_F32) st = vg_optim_to(opt, dev);
  return st;
}

vg_status vg_method_bad_value(const char *method, const char *key, const vg_json *v, const char *const (*ranges)[2]) {
  const char *want = NULL;
  for (int i = 0; ranges && ranges[i][0] && !want; i++)
    if (!strcmp(ranges[i][0], key)) want = ranges[i][1];
  vg_json_writer w;
  vg_jw_init(&w, 0);
  vg_jw_value(&w, v);
  char *text = vg_jw_finish(&w, NULL);
  vg_status st = vg_fail(VG_ERR_ARG, "%s: bad value %.200s for config key '%s'%s%s", method, text ? text : "?", key,
                         want ? ": want " : "", want ? want : "");
  free(text);
  return st;
}

vg_status vg_method_check_memory(const char *method, const char *keys, double trained, double frozen,
                                 double act_floats) {
  double need = 16.0 * trained + 4.0 * frozen + 4.0 * act_floats;
  const char *what;
  double lim = vg_memory_limit(&what);
  if (lim <= 0 || need <= lim) return VG_OK;
  return vg_fail(VG_ERR_ARG, "%s: config %s needs about %.1f GiB (%.0fM trained + %.0fM frozen parameters, %.1f GiB of "
                 "activations per image), more than the %.1f GiB of %s: use smaller values", method, keys,
                 need / 1073741824.0, trained / 1e6, frozen / 1e6, 4.0 * act_floats / 1073741824.0, lim / 1073741824.0,
                 what);
}

double vg_memory_limit(const char **what) {
  double lim = 0;
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  if (pages > 0 && psz > 0) lim = (double)pages * (double)psz;
  *what = "the machine's memory";
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (lim <= 0 || (double)rl.rlim_cur < lim)) {
    lim = (double)rl.rlim_cur;
    *what = "the process's address-space limit (ulimit -v)";
  }
  return lim;
}
