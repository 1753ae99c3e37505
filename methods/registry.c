/* registry.c — method name -> descriptor (methods/method.h). A new method adds one VG_METHOD line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "nn/checkpoint.h"
#include "methods/method.h"

/* The registered methods, one line each: VG_METHOD(NAME) names the descriptor
 * `vg_method_NAME` its folder methods/NAME/ defines (methods/method.h). */
#define VG_METHOD_LIST \
  VG_METHOD(fastflow) \
  VG_METHOD(cflow) \
  VG_METHOD(efficientad) \
  VG_METHOD(stfpm) \
  VG_METHOD(patchcore) \
  VG_METHOD(padim) \
  VG_METHOD(meanimage)

#define VG_METHOD(n) extern const vg_method_def vg_method_##n;
VG_METHOD_LIST
#undef VG_METHOD
#define VG_METHOD(n) &vg_method_##n,
static const vg_method_def *const vg_methods[] = { VG_METHOD_LIST NULL };
#undef VG_METHOD
#define VG_NMETHODS (sizeof vg_methods / sizeof vg_methods[0] - 1)

const vg_method_def *const *vg_method_defs(void) { return vg_methods; }

const vg_method_def *vg_method_find(const char *name) {
  for (size_t i = 0; name && vg_methods[i]; i++)
    if (!strcmp(vg_methods[i]->name, name)) return vg_methods[i];
  return NULL;
}

const char *const *vg_method_names(void) {
  static const char *names[VG_NMETHODS + 1];
  size_t i = 0;
  for (; vg_methods[i]; i++) names[i] = vg_methods[i]->name;
  names[i] = NULL;
  return names;
}

const char *vg_method_list(char *buf, size_t cap, const char *sep, bool anomalib_only) {
  size_t n = 0, total = 0, k = 0;
  for (size_t i = 0; vg_methods[i]; i++) total += !anomalib_only || vg_methods[i]->anomalib_load;
  if (cap) buf[0] = 0;
  for (size_t i = 0; vg_methods[i] && cap; i++) {
    if (anomalib_only && !vg_methods[i]->anomalib_load) continue;
    const char *s = k == 0 ? "" : (k + 1 == total && !strcmp(sep, ", ")) ? " or " : sep;
    int w = snprintf(buf + n, cap - n, "%s%s", s, vg_methods[i]->name);
    if (w < 0 || (size_t)w >= cap - n) break;
    n += (size_t)w;
    k++;
  }
  return buf;
}

vg_status vg_method_create(const char *name, const vg_json *cfg, vg_method **out) {
  *out = NULL;
  const vg_method_def *d = vg_method_find(name);
  if (d) return d->create(cfg, out);
  char known[256];
  return vg_fail(VG_ERR_ARG, "unknown method '%s' (known: %s)", name ? name : "(null)",
                 vg_method_list(known, sizeof known, ", ", false));
}

bool vg_method_quick_schedule(const char *name, vg_method_quick *out) {
  const vg_method_def *d = vg_method_find(name);
  if (!d || d->quick.steps <= 0) return false;
  *out = d->quick;
  return true;
}

bool vg_method_print_config_help(FILE *out, const char *name) {
  const vg_method_def *d = vg_method_find(name);
  if (!d) return false;
  if (d->summary) fprintf(out, "%s: %s\n", d->name, d->summary);
  vg_cfg_print_help(out, d->name, d->config);
  return true;
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
